/**
 * Real skopeo pushing an OCI layout (busybox, made with umoci) through the
 * gateway with auth on (token flow), and pulling it back.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { haveTools } from '../../helpers/tools.ts'
import { hashPassword } from '../../../src/gateway/index.ts'
import { serveGateway } from './serve.ts'
import type { ServedGateway } from './serve.ts'

const run = promisify(execFile)
const MAKE_BASE = resolve(import.meta.dirname, '../../../../shared/bench/make-busybox-base.sh')

describe.skipIf(!haveTools('skopeo', 'umoci', 'busybox'))('skopeo through the gateway', () => {
  let dir: string
  let served: ServedGateway
  let env: NodeJS.ProcessEnv

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-skopeo-'))
    env = { ...process.env, HOME: dir, XDG_RUNTIME_DIR: dir, REGISTRY_AUTH_FILE: join(dir, 'auth.json') }
    await run('sh', [MAKE_BASE, join(dir, 'layout'), 'base'], { env })
    served = await serveGateway({
      auth: {
        anonymousRead: true,
        users: [{ name: 'builder', passwordHash: await hashPassword('b-pass'), access: [{ repository: 'hpc/**', allow: ['read', 'write'] }] }]
      }
    })
  })
  afterAll(async () => {
    await served?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  const skopeo = async (...args: string[]): Promise<string> => (await run('skopeo', args, { env, timeout: 60_000 })).stdout

  it('pushes with credentials, refuses without, and pulls back the same image anonymously', async () => {
    const dest = `docker://${served.hostPort}/hpc/busybox:v1`
    await expect(skopeo('copy', '--dest-tls-verify=false', `oci:${join(dir, 'layout')}:base`, dest)).rejects.toThrow(/unauthorized|authentication required/i)
    await expect(skopeo('copy', '--dest-tls-verify=false', '--dest-creds', 'builder:wrong', `oci:${join(dir, 'layout')}:base`, dest)).rejects.toThrow()
    await skopeo('copy', '--dest-tls-verify=false', '--dest-creds', 'builder:b-pass', `oci:${join(dir, 'layout')}:base`, dest)

    const raw = await skopeo('inspect', '--raw', '--tls-verify=false', dest)
    const pushed = JSON.parse(raw) as { layers: Array<{ digest: string }> }
    expect(pushed.layers).toHaveLength(1)
    const tags = JSON.parse(await skopeo('list-tags', '--tls-verify=false', `docker://${served.hostPort}/hpc/busybox`)) as { Tags: string[] }
    expect(tags.Tags).toEqual(['v1'])

    await skopeo('copy', '--src-tls-verify=false', dest, `oci:${join(dir, 'back')}:v1`)
    const index = JSON.parse(await readFile(join(dir, 'back', 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
    const inspect = JSON.parse(await skopeo('inspect', '--tls-verify=false', dest)) as { Digest: string }
    expect(index.manifests[0]?.digest).toBe(inspect.Digest)
    const layerDigest = (pushed.layers[0] as { digest: string }).digest
    const layer = await readFile(join(dir, 'back', 'blobs', 'sha256', layerDigest.slice(7)))
    expect(layer.byteLength).toBeGreaterThan(100_000)
  })
})
