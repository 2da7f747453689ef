/**
 * Debian's docker-registry (CNCF distribution 2.8) on a loopback port over a
 * temp dir, optionally with htpasswd (bcrypt) auth.
 */
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, startHttpService } from '../../helpers/http-service.ts'

export interface DockerRegistry {
  hostPort: string
  stop: () => Promise<void>
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
  let service
  try {
    service = await startHttpService('docker-registry', '/usr/bin/docker-registry', ['serve', join(dir, 'config.yml')], `http://127.0.0.1:${port}/v2/`)
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  return {
    hostPort: `127.0.0.1:${port}`,
    stop: async () => {
      await service.stop()
      await rm(dir, { recursive: true, force: true })
    }
  }
}
