/**
 * Debian's docker-registry (CNCF distribution 2.8) on a loopback port over a
 * temp dir, optionally with htpasswd (bcrypt) auth.
 */
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface DockerRegistry {
  hostPort: string
  stop: () => Promise<void>
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => { resolve(port) })
    })
  })
}

/** A bcrypt hash for htpasswd, via python3's crypt; undefined when that is unavailable. */
export function bcryptHash (password: string): string | undefined {
  try {
    const out = execFileSync('python3', ['-W', 'ignore', '-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))', password], { stdio: ['ignore', 'pipe', 'ignore'], encoding: 'utf8' }).trim()
    return out.startsWith('$2') ? out : undefined
  } catch { return undefined }
}

export async function startDockerRegistry (users?: Record<string, string>): Promise<DockerRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-distribution-'))
  const port = await freePort()
  let auth = ''
  if (users !== undefined) {
    await writeFile(join(dir, 'htpasswd'), Object.entries(users).map(([u, h]) => `${u}:${h}\n`).join(''))
    auth = `auth:\n  htpasswd:\n    realm: kiln-test\n    path: ${join(dir, 'htpasswd')}\n`
  }
  await writeFile(join(dir, 'config.yml'), `version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: ${join(dir, 'data')}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${port}
${auth}`)
  const child: ChildProcess = spawn('/usr/bin/docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const deadline = Date.now() + 10_000
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v2/`)
      await res.body?.cancel()
      break
    } catch {
      if (Date.now() > deadline || child.exitCode !== null) {
        child.kill()
        throw new Error(`docker-registry did not start: ${stderr.slice(-500)}`)
      }
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
  return {
    hostPort: `127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise(resolve => child.once('exit', resolve))
        child.kill('SIGTERM')
        await exited
      }
      await rm(dir, { recursive: true, force: true })
    }
  }
}
