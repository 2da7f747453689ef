/**
 * The store quota on a running agent, wired as agent/runtime.ts wires it:
 * a tracked store, a Transfer that leases what it writes, build leases and
 * the upkeep that enforces the quota. Two libp2p nodes on loopback; the
 * receiving one enforces a quota of one byte (no grace period) while it is
 * pulling an image from the other and while a build holds a lease.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, utimes } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { startStoreUpkeep } from '../../../agent/store-upkeep.ts'
import { createBuildLeases } from '../../../src/content/index.ts'
import { createFsContentStore, createLeases, openLocalStore } from '../../../src/content/index.ts'
import type { ContentStore, Digest, LocalStore } from '../../../src/content/index.ts'
import { createPins } from '../../../src/content/pins.ts'
import { createTrackedStore } from '../../../src/content/quota.ts'
import { createMetrics } from '../../../src/metrics/index.ts'
import { createKilnNode } from '../../../src/p2p/index.ts'
import type { KilnNode } from '../../../src/p2p/index.ts'
import { createTransfer } from '../../../src/transfer/index.ts'

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const OLD = 1_000_000 // seconds since the epoch: far outside any grace period

/** Writes a one-config, n-layer image into a store; returns the digests. */
async function writeImage (store: ContentStore, layerBytes: number[], tag: string): Promise<{ manifest: { digest: Digest, size: number }, blobs: Digest[] }> {
  const config = await store.ingest(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, tag })))
  const layers = []
  for (const n of layerBytes) layers.push(await store.ingest(randomBytes(n)))
  const manifest = await store.ingest(Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
    layers: layers.map(l => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.digest, size: l.size }))
  })))
  return { manifest, blobs: [manifest.digest, config.digest, ...layers.map(l => l.digest)] }
}

/** Serves layer reads slowly, so that a pull is still running while the quota is enforced. */
function slowReads (inner: ContentStore, slow: Set<Digest>): ContentStore {
  return {
    ...inner,
    read: (digest, options) => (async function * () {
      for await (const chunk of inner.read(digest, options)) {
        if (slow.has(digest)) await new Promise(resolve => setTimeout(resolve, 150))
        yield chunk
      }
    })()
  }
}

describe('store quota on a running agent', () => {
  const cleanups: Array<() => Promise<void> | void> = []
  afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

  it('Filling the store past its quota evicts only unpinned, unleased content and never breaks a build or transfer in progress', { timeout: 120_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kiln-agent-quota-'))
    cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })

    // The serving peer: an image whose layers it sends slowly.
    const served = await createFsContentStore({ root: join(dir, 'a') })
    const image = await writeImage(served, [600_000, 600_000], 'served')
    const nodes: KilnNode[] = []
    cleanups.push(async () => { await Promise.all(nodes.map(async n => { await n.stop() })) })
    const nodeA = await createKilnNode({ listen: ['/ip4/127.0.0.1/tcp/0'] })
    nodes.push(nodeA)
    const transferA = createTransfer({ node: nodeA, store: slowReads(served, new Set(image.blobs.slice(2))) })
    await transferA.start()
    cleanups.push(async () => { await transferA.stop() })

    // The agent: its data dir, tracked store, leasing transfer, upkeep with a one-byte quota.
    const local: LocalStore = await openLocalStore(join(dir, 'b'))
    cleanups.push(() => { local.close() })
    const store = createTrackedStore(local.content, local.db)
    const leases = createLeases(local.db)
    const metrics = createMetrics()
    const upkeep = startStoreUpkeep({ store, db: local.db, quota: 1, graceMs: 0, metrics })
    cleanups.push(async () => { await upkeep.stop() })
    const nodeB = await createKilnNode({ listen: ['/ip4/127.0.0.1/tcp/0'] })
    nodes.push(nodeB)
    await nodeB.dial(nodeA.getMultiaddrs()[0] as Parameters<KilnNode['dial']>[0])
    const transferB = createTransfer({ node: nodeB, store, leases, metrics })
    const building = createBuildLeases(store, leases)

    // What it holds already: junk nobody names, a pinned image, an unpinned named image. All old.
    const junk = [await store.ingest(randomBytes(50_000)), await store.ingest(randomBytes(50_000))].map(b => b.digest)
    const pinned = await writeImage(store, [40_000], 'pinned')
    local.refs.set('site/pinned', '1', { digest: pinned.manifest.digest, mediaType: MANIFEST, size: pinned.manifest.size })
    createPins(local.db, local.refs).pin('site/pinned:1')
    const named = await writeImage(store, [30_000], 'named')
    local.refs.set('site/named', '1', { digest: named.manifest.digest, mediaType: MANIFEST, size: named.manifest.size })
    for (const d of [...junk, ...pinned.blobs, ...named.blobs]) await utimes(await local.content.path(d), OLD, OLD)

    // A pull from the peer; the quota runs once the manifest is in and a layer is on its way.
    let midPull!: () => void
    const layerArriving = new Promise<void>(resolve => { midPull = resolve })
    const pull = transferB.pull(image.manifest.digest, {
      size: image.manifest.size,
      providers: [nodeA.peerId],
      findProviders: false,
      chunkSize: 64 * 1024,
      onProgress: p => { if (image.blobs.slice(2).includes(p.digest) && p.bytes > 0) midPull() }
    })

    // A build in progress: it has written a layer (old, so only its lease keeps it) and reads it back after the quota ran.
    const built = await building.hold(async () => {
      const layer = await building.store.ingest(randomBytes(20_000))
      await utimes(await local.content.path(layer.digest), OLD, OLD)
      await layerArriving
      const result = await upkeep.enforce()
      const back = await building.store.readBytes(layer.digest, 1 << 20)
      return { layer: layer.digest, back: back.byteLength, result }
    })
    const pulled = await pull

    expect(built.back).toBe(20_000)
    const evicted = new Set(built.result?.evicted.map(e => e.digest))
    // Only the unpinned, unleased, old content went: the junk first, then the unpinned image.
    expect(evicted).toEqual(new Set([...junk, ...named.blobs]))
    expect(built.result?.overQuota).toBe(true)
    for (const d of pinned.blobs) expect(await store.has(d)).toBe(true)
    expect(await store.has(built.layer)).toBe(true)
    // The pull finished whole: every blob of the image is in the store, verified on commit.
    expect(pulled.blobs.map(b => b.digest).sort()).toEqual([...image.blobs].sort())
    for (const d of image.blobs) expect(await store.has(d)).toBe(true)
    // Leases end with the work: the next run may take what is no longer in use (all of it is old or unpinned).
    expect(leases.held().size).toBe(0)
    const text = await metrics.render()
    expect(text).toMatch(/^kiln_store_evicted_bytes_total [1-9]\d*$/m)
    expect(text).toMatch(/^kiln_store_quota_bytes 1$/m)
  })

  it('runs one enforcement at a time: calls during a run share the one run after it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kiln-agent-quota-'))
    cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const local = await openLocalStore(dir)
    cleanups.push(() => { local.close() })
    let walks = 0
    let inWalk = 0
    let overlapped = false
    const counting: ContentStore = {
      ...local.content,
      walk: () => (async function * () {
        walks++
        inWalk++
        if (inWalk > 1) overlapped = true
        try {
          await new Promise(resolve => setTimeout(resolve, 50))
          yield * local.content.walk()
        } finally { inWalk-- }
      })()
    }
    await local.content.ingest(randomBytes(1000))
    const upkeep = startStoreUpkeep({ store: counting, db: local.db, quota: 10 })
    cleanups.push(async () => { await upkeep.stop() })
    const runs = await Promise.all([upkeep.enforce(), upkeep.enforce(), upkeep.enforce(), upkeep.enforce()])
    expect(runs.every(r => r !== undefined)).toBe(true)
    expect(walks).toBe(2)
    expect(overlapped).toBe(false)
  })
})
