/**
 * Runs one host process as the leader of its own process group, so that a
 * timeout or an abort kills everything it started (SIGKILL to the group),
 * and resolves only once it has exited and its pipes are closed.
 *
 * Terms: the *leader* is the process started; its *group* is every process
 * that has not left the leader's process group (a `setsid` daemon has: the
 * drivers' namespaces or tracer take care of those).
 */
import { spawn } from 'node:child_process'
import type { Writable } from 'node:stream'
import { hostTool } from './host-tools.ts'
import type { OutputStream, RunResult } from './types.ts'

/** How long a leader asked to stop with `stopSignal` has before its group is killed outright. */
export const STOP_GRACE_MS = 5_000

export interface ProcessSpec {
  file: string
  args: string[]
  env: Record<string, string>
  cwd?: string
  timeoutMs?: number
  signal?: AbortSignal
  onOutput?: (stream: OutputStream, chunk: Uint8Array) => void
  /**
   * Signal the leader gets when kiln dies (even by SIGKILL): the kernel's
   * parent-death signal, set by util-linux `setpriv --pdeathsig` before the
   * program starts. Default: none, the leader outlives kiln. On a node
   * without setpriv (util-linux before 2.31) the leader starts without it:
   * the probe says so (`kiln doctor`).
   */
  parentDeathSignal?: NodeJS.Signals
  /**
   * On timeout or abort, send this to the leader alone and kill the group
   * once it has exited (or after STOP_GRACE_MS), for a leader that must
   * clean up first. Default: SIGKILL to the group at once.
   */
  stopSignal?: NodeJS.Signals
  /**
   * Bytes the leader can read on file descriptors 3, 4, ... (one pipe
   * each, closed after the bytes): how bwrap takes its seccomp program and
   * the files it places in the sandbox (./root-emulation.ts). Default: none.
   */
  inputFds?: readonly Uint8Array[]
  /** `inherit`: the leader reads kiln's stdin. Default: /dev/null. */
  stdin?: 'null' | 'inherit'
  /** `inherit`: the leader writes to kiln's stdout and stderr (onOutput is not called). Default: pipes to onOutput. */
  output?: 'pipe' | 'inherit'
}

function command (spec: ProcessSpec): { file: string, args: string[] } {
  const setpriv = hostTool('setpriv')
  if (spec.parentDeathSignal === undefined || setpriv === undefined) return { file: spec.file, args: spec.args }
  return { file: setpriv, args: ['--pdeathsig', spec.parentDeathSignal, '--', spec.file, ...spec.args] }
}

export async function runProcess (spec: ProcessSpec): Promise<RunResult> {
  spec.signal?.throwIfAborted()
  const started = performance.now()
  const { file, args } = command(spec)
  const out = spec.output === 'inherit' ? 'inherit' : 'pipe'
  const child = spawn(file, args, {
    env: spec.env,
    cwd: spec.cwd ?? '/',
    detached: true,
    stdio: [spec.stdin === 'inherit' ? 'inherit' : 'ignore', out, out, ...(spec.inputFds ?? []).map(() => 'pipe' as const)]
  })
  spec.inputFds?.forEach((bytes, i) => {
    const pipe = child.stdio[3 + i] as Writable
    // A leader that exits without reading closes the pipe: its exit status reports that, not an EPIPE here.
    pipe.on('error', () => {})
    pipe.end(bytes)
  })
  let timedOut = false
  let aborted = false
  let exited = false
  let grace: NodeJS.Timeout | undefined
  const killTree = (): void => {
    if (child.pid === undefined) return
    try { process.kill(-child.pid, 'SIGKILL') } catch { /* already gone */ }
  }
  const stop = (): void => {
    if (spec.stopSignal === undefined || child.pid === undefined || exited) { killTree(); return }
    try { process.kill(child.pid, spec.stopSignal) } catch { /* already gone */ }
    grace ??= setTimeout(killTree, STOP_GRACE_MS)
  }
  const timer = spec.timeoutMs === undefined ? undefined : setTimeout(() => { timedOut = true; stop() }, spec.timeoutMs)
  const onAbort = (): void => { aborted = true; stop() }
  spec.signal?.addEventListener('abort', onAbort, { once: true })
  child.once('exit', () => { exited = true })
  child.stdout?.on('data', (chunk: Buffer) => spec.onOutput?.('stdout', chunk))
  child.stderr?.on('data', (chunk: Buffer) => spec.onOutput?.('stderr', chunk))
  try {
    const { code, signal } = await new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', reject)
      child.once('close', (code, signal) => { resolve({ code, signal }) })
    })
    // The leader is gone; anything left in its group (a daemon the step forked) goes too.
    killTree()
    if (aborted) throw spec.signal?.reason ?? new Error('aborted')
    return { exitCode: code, signal, timedOut, durationMs: performance.now() - started }
  } finally {
    if (timer !== undefined) clearTimeout(timer)
    if (grace !== undefined) clearTimeout(grace)
    spec.signal?.removeEventListener('abort', onAbort)
  }
}
