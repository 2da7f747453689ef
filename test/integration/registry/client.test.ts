/**
 * The registry client against kiln's gateway (token auth) and Debian's
 * docker-registry (htpasswd basic auth), on loopback: push a two-platform
 * image (one blob in chunks), list tags, pull it back whole and for one
 * platform, and refuse wrong credentials.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createFsContentStore } from '../../../src/content/fs-store.ts'
import type { ContentStore } from '../../../src/content/index.ts'
import { sha256Digest } from '../../../src/content/digest.ts'
import type { Digest } from '../../../src/content/digest.ts'
import { hashPassword } from '../../../src/gateway/index.ts'
import { createRegistryClient, pullImage, pushImage } from '../../../src/registry/index.ts'
import type { Credentials } from '../../../src/registry/index.ts'
import { haveTools } from '../../helpers/tools.ts'
import { serveGateway } from '../../e2e/gateway/serve.ts'
import { bcryptHash, startDockerRegistry } from './docker-registry.ts'

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
const CREDS: Credentials = { username: 'pusher', password: 'push-pass' }

async function put (store: ContentStore, value: Uint8Array | string): Promise<{ digest: Digest, size: number }> {
  const bytes = typeof value === 'string' ? Buffer.from(value) : value
  return await store.ingest(bytes, { digest: sha256Digest(bytes) })
}

/** A two-platform index in the store; the amd64 layer is 300 KiB of varied bytes. */
async function makeImage (store: ContentStore): Promise<{ index: Digest, amd64: Digest, arm64: Digest, bigLayer: Digest }> {
  const big = Buffer.alloc(300 * 1024)
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251
  const out: Record<string, Digest> = {}
  const entries = []
  for (const arch of ['amd64', 'arm64']) {
    const config = await put(store, JSON.stringify({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }))
    const layer = await put(store, arch === 'amd64' ? big : `small-${arch}`)
    if (arch === 'amd64') out.bigLayer = layer.digest
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }]
    }))
    const m = await put(store, manifest)
    out[arch] = m.digest
    entries.push({ mediaType: OCI_MANIFEST, ...m, platform: { os: 'linux', architecture: arch } })
  }
  const index = await put(store, JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries }))
  return { index: index.digest, amd64: out.amd64 as Digest, arm64: out.arm64 as Digest, bigLayer: out.bigLayer as Digest }
}

interface Target { name: string, start: () => Promise<{ hostPort: string, stop: () => Promise<void>, auth: boolean }> }

const targets: Target[] = [
  {
    name: 'kiln gateway (bearer token auth)',
    start: async () => {
      const served = await serveGateway({
        auth: { anonymousRead: false, users: [{ name: CREDS.username, passwordHash: await hashPassword(CREDS.password), access: [{ repository: '**', allow: ['read', 'write'] }] }] }
      })
      return { hostPort: served.hostPort, stop: served.stop, auth: true }
    }
  }
]
if (haveTools('docker-registry')) {
  targets.push({
    name: 'docker-registry (htpasswd basic auth when bcrypt is at hand)',
    start: async () => {
      const hash = bcryptHash(CREDS.password)
      const reg = await startDockerRegistry(hash === undefined ? undefined : { [CREDS.username]: hash })
      return { ...reg, auth: hash !== undefined }
    }
  })
}

describe.each(targets)('registry client against $name', (target) => {
  let dir: string
  let src: ContentStore
  let server: Awaited<ReturnType<Target['start']>>
  let image: Awaited<ReturnType<typeof makeImage>>
  const env = { HOME: '/nonexistent' }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-regclient-'))
    src = await createFsContentStore({ root: join(dir, 'src') })
    image = await makeImage(src)
    server = await target.start()
  })
  afterAll(async () => {
    await server?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('pushes an index with a chunked blob, lists tags, pulls it back whole and per platform', async () => {
    const client = createRegistryClient({ registry: server.hostPort, credentials: CREDS, env })
    await client.ping()
    await pushImage(client, src, { digest: image.index, mediaType: OCI_INDEX }, 'hpc/tool', 'v1', { chunkSize: 100 * 1024 })
    expect(await client.listTags('hpc/tool')).toEqual(['v1'])
    expect((await client.headManifest('hpc/tool', 'v1'))?.digest).toBe(image.index)

    const whole = await createFsContentStore({ root: join(dir, 'whole') })
    const stored = new Map<string, string>()
    const bytesOf = new Map<string, number>()
    const pulled = await pullImage(client, 'hpc/tool', 'v1', whole, {
      onProgress: (d, bytes) => { bytesOf.set(d.digest, bytes) },
      onBlob: (d, status) => { stored.set(d.digest, status) }
    })
    expect(pulled.digest).toBe(image.index)
    // Each config and layer is reported as it is stored: the big layer's last report is all of it.
    expect(stored.get(image.bigLayer)).toBe('stored')
    expect(bytesOf.get(image.bigLayer)).toBe(300 * 1024)
    const again = new Map<string, string>()
    await pullImage(client, 'hpc/tool', 'v1', whole, { onBlob: (d, status) => { again.set(d.digest, status) } })
    expect(new Set(again.values())).toEqual(new Set(['present']))
    expect(pulled.manifests.sort()).toEqual([image.amd64, image.arm64].sort())
    expect(await whole.has(image.bigLayer)).toBe(true)
    expect((await whole.info(image.bigLayer)).size).toBe(300 * 1024)

    const one = await createFsContentStore({ root: join(dir, 'one') })
    const arm = await pullImage(client, 'hpc/tool', 'v1', one, { platform: { os: 'linux', architecture: 'arm64' } })
    expect(arm.manifests).toEqual([image.arm64])
    expect(await one.has(image.bigLayer)).toBe(false)

    // Pushing again uploads nothing new.
    expect(await client.pushBlob('hpc/tool', { digest: image.bigLayer, size: 300 * 1024 }, src)).toBe('exists')
    const mounted = await client.pushBlob('hpc/other', { digest: image.bigLayer, size: 300 * 1024 }, src, { mountFrom: 'hpc/tool' })
    expect(['mounted', 'uploaded']).toContain(mounted)
  })

  it('refuses wrong credentials and reports unknown manifests by name', async (ctx) => {
    if (!server.auth) ctx.skip()
    const bad = createRegistryClient({ registry: server.hostPort, credentials: { username: CREDS.username, password: 'wrong' }, env })
    await expect(bad.getManifest('hpc/tool', 'v1')).rejects.toMatchObject({ name: 'RegistryUnauthorizedError' })
    const good = createRegistryClient({ registry: server.hostPort, credentials: CREDS, env })
    await expect(good.getManifest('hpc/tool', 'nope')).rejects.toMatchObject({ name: 'RegistryNotFoundError' })
  })
})
