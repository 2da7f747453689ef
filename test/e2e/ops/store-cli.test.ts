import { mkdtemp, rm, utimes } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openLocalStore } from '../../../src/content/index.ts'
import type { Digest } from '../../../src/content/index.ts'
import { runKiln } from '../../helpers/cli.ts'

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json'

describe('kiln store', () => {
  let dir: string
  const env = (): NodeJS.ProcessEnv => ({ KILN_DATA_DIR: dir, KILN_CONFIG: '' })
  const image: Record<string, Digest> = {}

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-store-cli-'))
    const s = await openLocalStore(dir)
    const ingest = async (text: string): Promise<{ digest: Digest, size: number }> => await s.content.ingest(Buffer.from(text))
    const config = await ingest('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}')
    const layer = await ingest('x'.repeat(5000))
    const manifest = await ingest(JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }]
    }))
    const orphan = await ingest('o'.repeat(3000))
    s.refs.set('site/app', 'v1', { digest: manifest.digest, mediaType: MANIFEST, size: manifest.size })
    Object.assign(image, { config: config.digest, layer: layer.digest, manifest: manifest.digest, orphan: orphan.digest })
    // Old enough to be outside any grace period.
    for (const d of Object.values(image)) await utimes(await s.content.path(d), 1_000_000, 1_000_000)
    s.close()
  })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('pins a name, reports usage, and prune evicts only what is not pinned', async () => {
    const pin = await runKiln(['store', 'pin', 'site/app:v1'], { env: env() })
    expect(pin.stderr).toBe('')
    expect(pin.code).toBe(0)
    const df = await runKiln(['store', 'df', '--json'], { env: env() })
    expect(df.code).toBe(0)
    const u = JSON.parse(df.stdout) as { blobs: number, bytes: number, pinnedBytes: number, pins: number, quota: number | null }
    expect(u.blobs).toBe(4)
    expect(u.pins).toBe(1)
    expect(u.bytes - u.pinnedBytes).toBe(3000)
    expect(u.quota).toBeNull()

    const noQuota = await runKiln(['store', 'prune'], { env: env() })
    expect(noQuota.code).toBe(2)
    expect(noQuota.stderr).toMatch(/no quota/)

    const prune = await runKiln(['store', 'prune', '--quota', '1KiB', '--json'], { env: env() })
    expect(prune.code).toBe(0)
    const r = JSON.parse(prune.stdout) as { evicted: Array<{ digest: string }>, overQuota: boolean }
    expect(r.evicted.map(e => e.digest)).toEqual([image.orphan])
    expect(r.overQuota).toBe(true)

    const unpin = await runKiln(['store', 'unpin', 'site/app:v1', '--json'], { env: env() })
    expect(JSON.parse(unpin.stdout)).toEqual({ target: 'site/app:v1', unpinned: true })
    const again = await runKiln(['store', 'unpin', 'site/app:v1'], { env: env() })
    expect(again.code).toBe(3)
  })
})
