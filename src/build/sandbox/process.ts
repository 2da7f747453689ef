/**
 * Runs one host process as the leader of its own process group, so that a
 * timeout or an abort kills everything it started (SIGKILL to the group),
 * and resolves only once it has exited and its pipes are closed.
 */
import { spawn } from 'node:child_process'
import type { OutputStream, RunResult } from './types.ts'

export interface ProcessSpec {
  file: string
  args: string[]
  env: Record<string, string>
  cwd?: string
  timeoutMs?: number
  signal?: AbortSignal
  onOutput?: (stream: OutputStream, chunk: Uint8Array) => void
}

export async function runProcess (spec: ProcessSpec): Promise<RunResult> {
  spec.signal?.throwIfAborted()
  const started = performance.now()
  const child = spawn(spec.file, spec.args, {
    env: spec.env,
    cwd: spec.cwd ?? '/',
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let timedOut = false
  let aborted = false
  const killTree = (): void => {
    if (child.pid === undefined) return
    try { process.kill(-child.pid, 'SIGKILL') } catch { /* already gone */ }
  }
  const timer = spec.timeoutMs === undefined ? undefined : setTimeout(() => { timedOut = true; killTree() }, spec.timeoutMs)
  const onAbort = (): void => { aborted = true; killTree() }
  spec.signal?.addEventListener('abort', onAbort, { once: true })
  child.stdout.on('data', (chunk: Buffer) => spec.onOutput?.('stdout', chunk))
  child.stderr.on('data', (chunk: Buffer) => spec.onOutput?.('stderr', chunk))
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
    spec.signal?.removeEventListener('abort', onAbort)
  }
}
