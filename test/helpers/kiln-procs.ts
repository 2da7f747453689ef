/**
 * `kiln` processes for e2e tests, run as the unprivileged user of
 * test/helpers/unprivileged.ts (setpriv to 65534 when the tests run as
 * root): long-running ones (agents, gateways, submit) without blocking the
 * test, with event-driven waits on their output; short commands awaited;
 * a bounded stopAll().
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { isRoot } from './unprivileged.ts'
import type { Unprivileged } from './unprivileged.ts'

export interface Proc {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  /** Exit code (128 for a signal death). */
  exited: Promise<number>
  /** The first match of `re` in stdout or stderr, waiting up to `ms`; rejects if the process exits first. */
  waitFor: (re: RegExp, ms?: number) => Promise<RegExpExecArray>
}

export interface KilnProcs {
  /**
   * Starts `kiln ARGS` with this data dir (and these extra environment variables), inside network
   * namespace `netns` when given (test/helpers/netns.ts); the process is stopped by stopAll().
   */
  start: (args: string[], dataDir: string, env?: Record<string, string>, netns?: string) => Proc
  /** Runs `kiln ARGS` to its end and returns stdout; throws with stderr on a non-zero exit. */
  run: (dataDir: string, args: string[]) => Promise<string>
  /** Runs `kiln ARGS` to its end; resolves with the exit code and output, whatever they are. */
  exec: (args: string[], dataDir: string, timeoutMs?: number, netns?: string) => Promise<{ code: number, stdout: string, stderr: string }>
  peerId: (dataDir: string) => Promise<string>
  /** SIGTERM to every process still running (SIGKILL after 15 s), awaited. */
  stopAll: () => Promise<void>
}

function watch (child: ChildProcess): Proc {
  let out = ''
  let err = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<number>(resolve => child.on('exit', (c, s) => { resolve(c ?? (s !== null ? 128 : 1)) }))
  const waitFor = async (re: RegExp, ms = 60_000): Promise<RegExpExecArray> => await new Promise((resolve, reject) => {
    const check = (): void => {
      const m = re.exec(out) ?? re.exec(err)
      if (m !== null) { done(); resolve(m) }
    }
    const gone = (): void => { done(); reject(new Error(`kiln exited before printing ${String(re)}:\n${err}`)) }
    const timer = setTimeout(() => { done(); reject(new Error(`kiln printed no ${String(re)} within ${ms} ms:\n${out}\n${err}`)) }, ms)
    const done = (): void => { clearTimeout(timer); child.stdout?.off('data', check); child.stderr?.off('data', check); child.off('exit', gone) }
    child.stdout?.on('data', check)
    child.stderr?.on('data', check)
    child.once('exit', gone)
    check()
  })
  return { child, stdout: () => out, stderr: () => err, exited, waitFor }
}

export function kilnProcs (u: Unprivileged): KilnProcs {
  const all: Proc[] = []
  const start = (args: string[], dataDir: string, env: Record<string, string> = {}, netns?: string): Proc => {
    const node = [join(u.root, 'node_modules/.bin/node'), join(u.root, 'src/cli/kiln.mjs'), ...args]
    const dropped = isRoot() ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...node] : node
    // Entering a namespace needs root; the kiln process inside it still runs as the unprivileged user.
    const argv = netns !== undefined ? ['ip', 'netns', 'exec', netns, ...dropped] : dropped
    const child = spawn(argv[0] as string, argv.slice(1), {
      cwd: u.work,
      env: { PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', HOME: u.home, TMPDIR: join(u.home, 'tmp'), KILN_DATA_DIR: dataDir, ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    const p = watch(child)
    all.push(p)
    return p
  }
  const exec: KilnProcs['exec'] = async (args, dataDir, timeoutMs = 120_000, netns) => {
    const p = start(args, dataDir, {}, netns)
    const timer = setTimeout(() => { p.child.kill('SIGKILL') }, timeoutMs)
    const code = await p.exited
    clearTimeout(timer)
    return { code, stdout: p.stdout(), stderr: p.stderr() }
  }
  const run = async (dataDir: string, args: string[]): Promise<string> => {
    const r = await exec(args, dataDir)
    if (r.code !== 0) throw new Error(`kiln ${args.join(' ')} exited ${r.code}: ${r.stderr}`)
    return r.stdout
  }
  return {
    start,
    run,
    exec,
    peerId: async (dataDir) => (JSON.parse(await run(dataDir, ['key', 'show', '--json'])) as { peerId: string }).peerId,
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

/** Waits until the process has printed a match on stdout or stderr. */
export async function waitFor (p: Proc, re: RegExp, ms = 60_000): Promise<RegExpExecArray> {
  return await p.waitFor(re, ms)
}

/** An agent's loopback address, once it prints it. */
export async function addressOf (p: Proc): Promise<string> {
  return (await p.waitFor(/listening: (\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+)/))[1] as string
}
