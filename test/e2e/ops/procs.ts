/**
 * Long-running `kiln` processes for the ops e2e tests, as the unprivileged
 * user of test/helpers/unprivileged.ts (setpriv to 65534 under root), with
 * event-driven waits on their output and a bounded stopAll().
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { isRoot } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'

export interface Proc {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  /** Exit code (128 for a signal death). */
  exited: Promise<number>
  /** Resolves with the first match of `re` in stdout+stderr, waiting for it up to `ms`; rejects if the process exits first. */
  waitFor: (re: RegExp, ms?: number) => Promise<RegExpExecArray>
}

export interface Procs {
  start: (args: string[], dataDir: string) => Proc
  /** Runs to the end; resolves with the exit code and output. */
  run: (args: string[], dataDir: string, timeoutMs?: number) => Promise<{ code: number, stdout: string, stderr: string }>
  stopAll: () => Promise<void>
}

export function procs (u: Unprivileged): Procs {
  const all: Proc[] = []
  const start = (args: string[], dataDir: string): Proc => {
    const argv = [join(u.root, 'node_modules/.bin/node'), join(u.root, 'src/cli/kiln.mjs'), ...args]
    const child = spawn(isRoot() ? 'setpriv' : argv[0] as string, isRoot() ? ['--reuid=65534', '--regid=65534', '--clear-groups', ...argv] : argv.slice(1), {
      cwd: u.work,
      env: { PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', HOME: u.home, KILN_DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    let err = ''
    child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr?.on('data', (d: Buffer) => { err += d.toString() })
    const exited = new Promise<number>(resolve => child.on('exit', (c, s) => { resolve(c ?? (s !== null ? 128 : 1)) }))
    const waitFor = async (re: RegExp, ms = 60_000): Promise<RegExpExecArray> => await new Promise((resolve, reject) => {
      const check = (): void => {
        const m = re.exec(out + err)
        if (m !== null) { done(); resolve(m) }
      }
      const gone = (): void => { done(); reject(new Error(`exited before ${re.source}:\n${err}`)) }
      const timer = setTimeout(() => { done(); reject(new Error(`no ${re.source} within ${ms} ms:\n${out}\n${err}`)) }, ms)
      const done = (): void => { clearTimeout(timer); child.stdout?.off('data', check); child.stderr?.off('data', check); child.off('exit', gone) }
      child.stdout?.on('data', check)
      child.stderr?.on('data', check)
      child.once('exit', gone)
      check()
    })
    const p: Proc = { child, stdout: () => out, stderr: () => err, exited, waitFor }
    all.push(p)
    return p
  }
  return {
    start,
    run: async (args, dataDir, timeoutMs = 120_000) => {
      const p = start(args, dataDir)
      const timer = setTimeout(() => { p.child.kill('SIGKILL') }, timeoutMs)
      const code = await p.exited
      clearTimeout(timer)
      return { code, stdout: p.stdout(), stderr: p.stderr() }
    },
    stopAll: async () => {
      for (const p of all) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM')
      await Promise.all(all.map(async p => {
        const t = setTimeout(() => { p.child.kill('SIGKILL') }, 15_000)
        await p.exited
        clearTimeout(t)
      }))
    }
  }
}
