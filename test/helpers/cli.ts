/** Runs the real `kiln` launcher in a child process, as a user would. */
import { spawn } from 'node:child_process'
import { join } from 'node:path'

export const REPO_ROOT = join(import.meta.dirname, '..', '..')
export const KILN = join(REPO_ROOT, 'src', 'cli', 'kiln.mjs')

export interface RunResult { code: number, stdout: string, stderr: string }

export async function runKiln (args: string[], options: { env?: NodeJS.ProcessEnv, cwd?: string, timeoutMs?: number, input?: string | Uint8Array } = {}): Promise<RunResult> {
  const child = spawn(process.execPath, [KILN, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  child.stdin.end(options.input ?? '')
  const timer = setTimeout(() => { child.kill('SIGKILL') }, options.timeoutMs ?? 60_000)
  const code = await new Promise<number>(resolve => child.on('exit', (c, s) => { resolve(c ?? (s !== null ? 128 : 1)) }))
  clearTimeout(timer)
  return { code, stdout, stderr }
}
