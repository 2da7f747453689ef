/**
 * The child processes of `kiln demo`, each shown before it starts as a
 * person would type it in the demo's work dir. A *node* is a data dir under
 * the work dir, named by its folder; each `kiln` runs as one node
 * (KILN_DATA_DIR), with kiln.yaml only when given one (KILN_CONFIG). A
 * *background* process (an agent of the farm) runs until `stopAll`; its
 * output goes to `<work>/<node>.log` and is searched with `waitFor`. A
 * *step* is a command run to its end, its stdout shown line by line,
 * indented, and returned; its stderr is kept for the error when it fails
 * (progress bars there would only be noise in a transcript). Every wait
 * ends when the demo's `signal` aborts (Ctrl-C, or the demo's time limit),
 * and `stopAll` ends every process still running: SIGTERM, then SIGKILL
 * after STOP_GRACE_MS, so the demo leaves no process behind.
 */
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { join } from 'node:path'
import { CliError } from './errors.ts'
import { EXIT } from './exit-codes.ts'
import type { Output } from './output.ts'

const KILN = join(import.meta.dirname, 'kiln.mjs')

/** How long a process has to stop after SIGTERM before SIGKILL: an idle agent stops in well under a second. */
export const STOP_GRACE_MS = 15_000

export interface BackgroundProc {
  /** The first match of `re` in the output (stdout and stderr), waiting for it; rejects when the process exits or the demo is aborted first. */
  waitFor: (re: RegExp) => Promise<RegExpExecArray>
}

export interface KilnOptions {
  /** kiln.yaml of the node, a path in the work dir. */
  config?: string
  /** Show stdout as it comes (default true). */
  echo?: boolean
}

export interface DemoProcs {
  /** The data dir of a node. */
  dataDir: (node: string) => string
  /** Prints a command the demo does not run as a child (`cat` of a file it shows). */
  show: (line: string) => void
  /** Starts `kiln ARGS` as `node` in the background. */
  kilnInBackground: (node: string, args: string[], options?: KilnOptions) => BackgroundProc
  /** Runs `kiln ARGS` as `node` to its end; resolves with its stdout, rejects with a CliError on a non-zero exit. */
  kiln: (node: string, args: string[], options?: KilnOptions) => Promise<string>
  /** Runs a host tool to its end, as `kiln`. */
  tool: (cmd: string, args: string[], options?: { echo?: boolean }) => Promise<string>
  stopAll: () => Promise<void>
}

export interface DemoProcsInit {
  out: Output
  /** The work dir: nodes are folders in it, and paths in it are shown relative to it. */
  work: string
  /** The environment of every child, before the node's. */
  env: NodeJS.ProcessEnv
  signal: AbortSignal
}

/** The exit code (128 for a signal death, 127 for a command that could not be started). */
function exitOf (child: ChildProcess): Promise<number> {
  return new Promise(resolve => {
    child.once('exit', (code, sig) => { resolve(code ?? (sig !== null ? 128 : 1)) })
    child.once('error', () => { if (child.pid === undefined) resolve(127) })
  })
}

/** Whether `cmd` is on the PATH. */
export function hasTool (cmd: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$0"', cmd], { stdio: 'ignore' }).status === 0
}

function aborted (signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new CliError('the demo was stopped', { exitCode: EXIT.failure })
}

export function createDemoProcs (init: DemoProcsInit): DemoProcs {
  const { out, signal, work } = init
  const running = new Map<ChildProcess, Promise<number>>()
  const track = (child: ChildProcess): Promise<number> => {
    const exited = exitOf(child)
    running.set(child, exited)
    void exited.then(() => { running.delete(child) })
    return exited
  }
  const dataDir = (node: string): string => join(work, node)
  const relative = (arg: string): string => arg === work ? '.' : arg.startsWith(`${work}/`) ? arg.slice(work.length + 1) : arg
  const show = (line: string): void => { out.line(`$ ${line}`) }
  /** Shows the command line and returns the child's environment. */
  const asNode = (node: string, args: string[], options: KilnOptions, suffix: string): NodeJS.ProcessEnv => {
    show(`${options.config !== undefined ? `KILN_CONFIG=${relative(options.config)} ` : ''}KILN_DATA_DIR=${node} kiln ${args.map(relative).join(' ')}${suffix}`)
    return { ...init.env, KILN_DATA_DIR: dataDir(node), KILN_CONFIG: options.config ?? '' }
  }

  const kilnInBackground: DemoProcs['kilnInBackground'] = (node, args, options = {}) => {
    const env = asNode(node, args, options, ' &')
    const logFile = join(work, `${node}.log`)
    const child = spawn(process.execPath, [KILN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    const exited = track(child)
    const log = createWriteStream(logFile)
    let text = ''
    const listeners = new Set<() => void>()
    const collect = (d: Buffer): void => { text += d.toString(); log.write(d); for (const l of listeners) l() }
    child.stdout?.on('data', collect)
    child.stderr?.on('data', collect)
    void exited.then(() => { log.end(); for (const l of listeners) l() })
    const waitFor = async (re: RegExp): Promise<RegExpExecArray> => await new Promise((resolve, reject) => {
      const check = (): void => {
        const m = re.exec(text)
        if (m !== null) { done(); resolve(m); return }
        if (child.exitCode !== null || child.signalCode !== null) { done(); reject(new CliError(`kiln ${args[0] ?? ''} (${node}) exited before it was ready:\n${text}`, { exitCode: EXIT.failure })) }
        if (signal.aborted) { done(); reject(aborted(signal)) }
      }
      const done = (): void => { listeners.delete(check); signal.removeEventListener('abort', check) }
      listeners.add(check)
      signal.addEventListener('abort', check)
      check()
    })
    return { waitFor }
  }

  const step = async (cmd: string, argv: string[], env: NodeJS.ProcessEnv, name: string, echo: boolean): Promise<string> => {
    if (signal.aborted) throw aborted(signal)
    const child = spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    const exited = track(child)
    let stdout = ''
    let stderr = ''
    let partial = ''
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString()
      if (!echo) return
      // Whole lines only, each indented under the command that printed it.
      const lines = (partial + d.toString()).split('\n')
      partial = lines.pop() ?? ''
      for (const l of lines) out.line(`  ${l}`)
    })
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
    const onAbort = (): void => { child.kill('SIGTERM') }
    signal.addEventListener('abort', onAbort)
    const code = await exited.finally(() => { signal.removeEventListener('abort', onAbort) })
    if (echo && partial !== '') out.line(`  ${partial}`)
    if (signal.aborted) throw aborted(signal)
    if (code !== 0) throw new CliError(`demo step failed: ${name} exited with ${code}:\n${stderr.trimEnd()}`, { exitCode: EXIT.failure })
    return stdout
  }

  return {
    dataDir,
    show,
    kilnInBackground,
    kiln: async (node, args, options = {}) => await step(process.execPath, [KILN, ...args], asNode(node, args, options, ''), `kiln ${args[0] ?? ''}`, options.echo !== false),
    tool: async (cmd, args, options = {}) => {
      show(`${cmd} ${args.map(relative).join(' ')}`)
      return await step(cmd, args, init.env, cmd, options.echo !== false)
    },
    stopAll: async () => {
      await Promise.all([...running].map(async ([child, exited]) => {
        child.kill('SIGTERM')
        const force = setTimeout(() => { child.kill('SIGKILL') }, STOP_GRACE_MS)
        await exited
        clearTimeout(force)
      }))
    }
  }
}
