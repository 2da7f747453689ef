/**
 * Starts a real HTTP service (nginx, docker-registry) as a child process and
 * waits until it answers on loopback; on failure it is killed and its stderr
 * tail is in the error.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => { resolve(port) })
    })
  })
}

export interface StartedService {
  child: ChildProcess
  /** Stops the child with `signal` (default SIGTERM; SIGKILL after 5 s) and waits for it. */
  stop: (signal?: NodeJS.Signals) => Promise<void>
}

export async function startHttpService (name: string, command: string, args: string[], readyUrl: string, timeoutMs = 10_000): Promise<StartedService> {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      const res = await fetch(readyUrl)
      await res.body?.cancel()
      break
    } catch {
      if (Date.now() > deadline || child.exitCode !== null) {
        child.kill('SIGKILL')
        throw new Error(`${name} did not start: ${stderr.slice(-800)}`)
      }
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
  return {
    child,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise(resolve => child.once('exit', resolve))
      child.kill(signal)
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000)
      await exited
      clearTimeout(t)
    }
  }
}
