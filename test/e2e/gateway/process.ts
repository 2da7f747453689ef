/**
 * A long-running `kiln` process (gateway, up) for e2e tests: started with
 * `--json`, ready once its JSON object has been printed, stopped with
 * SIGTERM (SIGKILL after a bounded wait).
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { KILN, REPO_ROOT } from '../../helpers/cli.ts'

export interface KilnProcess<T> {
  child: ChildProcess
  ready: T
  stdout: () => string
  stderr: () => string
  /** SIGTERM (or the given signal), then the exit code; SIGKILL after 20 s. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

export async function startKiln<T> (args: string[], options: { env?: NodeJS.ProcessEnv, readyTimeoutMs?: number } = {}): Promise<KilnProcess<T>> {
  const child = spawn(process.execPath, [KILN, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => { resolve(code) }))
  const ready = await new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`kiln ${args.join(' ')} not ready in time\n${stderr}`)) }, options.readyTimeoutMs ?? 60_000)
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
      const start = stdout.indexOf('{')
      if (start < 0) return
      try {
        const value = JSON.parse(stdout.slice(start)) as T
        clearTimeout(timer)
        resolve(value)
      } catch { /* not complete yet */ }
    })
    void exited.then(code => { clearTimeout(timer); reject(new Error(`kiln ${args.join(' ')} exited with ${code}\n${stderr}`)) })
  })
  return {
    child,
    ready,
    stdout: () => stdout,
    stderr: () => stderr,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill(signal)
      const timer = setTimeout(() => { child.kill('SIGKILL') }, 20_000)
      const code = await exited
      clearTimeout(timer)
      return code
    }
  }
}
