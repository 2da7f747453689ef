/**
 * `kiln` processes for the job e2e tests, run as the unprivileged user of
 * test/helpers/unprivileged.ts (setpriv to 65534 when the tests run as
 * root): long-running ones (agents, submit) without blocking the test, and
 * short commands awaited, several at once.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { isRoot } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'

export interface Proc { child: ChildProcess, stdout: () => string, stderr: () => string, exited: Promise<number> }

export interface KilnProcs {
  /** Starts `kiln ARGS` with this data dir; the process is stopped by stopAll(). */
  start: (args: string[], dataDir: string) => Proc
  /** Runs `kiln ARGS` to its end and returns stdout; throws with stderr on a non-zero exit. */
  run: (dataDir: string, args: string[]) => Promise<string>
  peerId: (dataDir: string) => Promise<string>
  /** SIGTERM to every process still running (SIGKILL after 15 s), awaited. */
  stopAll: () => Promise<void>
}

export function kilnProcs (u: Unprivileged): KilnProcs {
  const procs: Proc[] = []
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
    const p = { child, stdout: () => out, stderr: () => err, exited }
    procs.push(p)
    return p
  }
  const run = async (dataDir: string, args: string[]): Promise<string> => {
    const p = start(args, dataDir)
    const timer = setTimeout(() => { p.child.kill('SIGKILL') }, 120_000)
    const code = await p.exited
    clearTimeout(timer)
    if (code !== 0) throw new Error(`kiln ${args.join(' ')} exited ${code}: ${p.stderr()}`)
    return p.stdout()
  }
  return {
    start,
    run,
    peerId: async (dataDir) => (JSON.parse(await run(dataDir, ['key', 'show', '--json'])) as { peerId: string }).peerId,
    stopAll: async () => {
      for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM')
      await Promise.all(procs.map(async p => {
        const t = setTimeout(() => { p.child.kill('SIGKILL') }, 15_000)
        await p.exited
        clearTimeout(t)
      }))
    }
  }
}

const LISTENING = /listening: (\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+)/

/** Waits (event-driven, bounded; also outside a test) until the process has printed a match on stdout or stderr. */
export async function waitFor (p: Proc, re: RegExp, ms = 60_000): Promise<RegExpExecArray> {
  const found = (): RegExpExecArray | null => re.exec(p.stdout()) ?? re.exec(p.stderr())
  return await new Promise<RegExpExecArray>((resolve, reject) => {
    const check = (): void => {
      const m = found()
      if (m !== null) { done(); resolve(m) }
    }
    const gone = (): void => { done(); reject(new Error(`kiln exited before printing ${String(re)}: ${p.stderr()}`)) }
    const timer = setTimeout(() => { done(); reject(new Error(`kiln printed no ${String(re)} in ${ms} ms: ${p.stderr()}`)) }, ms)
    const done = (): void => { clearTimeout(timer); p.child.stdout?.off('data', check); p.child.stderr?.off('data', check); p.child.off('exit', gone) }
    p.child.stdout?.on('data', check)
    p.child.stderr?.on('data', check)
    p.child.once('exit', gone)
    check()
  })
}

/** An agent's loopback address, once it prints it. */
export async function addressOf (p: Proc): Promise<string> {
  return (await waitFor(p, LISTENING))[1] as string
}
