import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createFsContentStore, createLeases, createRefStore } from '../../../src/content/index.ts'
import { openDb } from '../../../src/db/index.ts'
import type { ContentStore, Digest } from '../../../src/content/index.ts'
import type { KilnDb } from '../../../src/db/index.ts'
import { createPins } from '../../../src/content/pins.ts'
import { ACCESS_RESOLUTION_MS, createAccessLog, createTrackedStore, enforceQuota, parseByteSize } from '../../../src/content/quota.ts'

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json'

describe('store quota', () => {
  let root: string
  let raw: ContentStore
  let store: ContentStore
  let db: KilnDb
  let clock: number
  // A toy graph: a "manifest" blob's text is `refs` then the digests it refers to, one per line.
  const children = async (d: Digest): Promise<Digest[]> => {
    const text = Buffer.from(await raw.readBytes(d)).toString()
    return text.startsWith('refs\n') ? text.split('\n').slice(1).filter(Boolean) as Digest[] : []
  }
  // Times in the test are in units of the access log's resolution.
  const blob = async (text: string, at: number): Promise<Digest> => {
    clock = at * ACCESS_RESOLUTION_MS
    return (await store.ingest(Buffer.from(text))).digest
  }
  const image = async (name: string, at: number): Promise<{ manifest: Digest, layer: Digest }> => {
    const layer = await blob(`${name}-layer-${'x'.repeat(90)}`, at)
    const manifest = await blob(`refs\n${layer}`, at)
    return { manifest, layer }
  }
  const has = async (d: Digest): Promise<boolean> => await raw.has(d)

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'kiln-quota-'))
    raw = await createFsContentStore({ root: join(root, 'store') })
    db = openDb(join(root, 'kiln.db'))
    clock = 1_000_000
    store = createTrackedStore(raw, db, { now: () => clock })
  })
  afterEach(async () => {
    db.close()
    await rm(root, { recursive: true, force: true })
  })

  it('parses sizes with SI and IEC units', () => {
    expect(parseByteSize(1234)).toBe(1234)
    expect(parseByteSize('500GiB')).toBe(500 * 2 ** 30)
    expect(parseByteSize('20G')).toBe(20e9)
    expect(parseByteSize('1.5 Mi')).toBe(1.5 * 2 ** 20)
    expect(parseByteSize('10kb')).toBe(10_000)
    expect(() => parseByteSize('ten gigs')).toThrow(expect.objectContaining({ name: 'InvalidByteSizeError' }))
    expect(() => parseByteSize(-1)).toThrow(expect.objectContaining({ name: 'InvalidByteSizeError' }))
  })

  it('evicts unnamed content first, then named unpinned images, least recently used first; never pinned or leased content', async () => {
    const refs = createRefStore(db)
    const pinned = await image('pinned', 1_000)
    refs.set('site/base', 'v1', { digest: pinned.manifest, mediaType: MANIFEST, size: 1 })
    createPins(db, refs).pin('site/base:v1')
    const named = await image('named', 2_000)
    refs.set('site/app', 'v1', { digest: named.manifest, mediaType: MANIFEST, size: 1 })
    const leased = await image('in-transfer', 500) // the oldest of all, but a transfer holds it
    const lease = createLeases(db).create('transfer', 60_000)
    createLeases(db).add(lease, [leased.manifest])
    const oldOrphan = await blob(`old-orphan-${'y'.repeat(100)}`, 3_000)
    const newOrphan = await blob(`new-orphan-${'z'.repeat(100)}`, 4_000)
    // Reading the named image's layer makes it the most recently used blob.
    clock = 9_000 * ACCESS_RESOLUTION_MS
    for await (const chunk of store.read(named.layer)) expect(chunk.length).toBeGreaterThan(0)
    expect(createAccessLog(db).lastAccess(named.layer)).toBe(9_000 * ACCESS_RESOLUTION_MS)

    let total = 0
    for await (const b of raw.walk()) total += b.size
    const sizeOf = async (d: Digest): Promise<number> => (await raw.info(d)).size
    // Room for everything but the two orphans and the named manifest: the named layer, read last, stays.
    const quota = total - (await sizeOf(oldOrphan)) - (await sizeOf(newOrphan)) - (await sizeOf(named.manifest))

    const dry = await enforceQuota({ store, db, quota, children, graceMs: 0, dryRun: true })
    expect(dry.evicted.map(b => b.digest)).toEqual([oldOrphan, newOrphan, named.manifest])
    expect(await has(oldOrphan)).toBe(true)

    const r = await enforceQuota({ store, db, quota, children, graceMs: 0 })
    expect(r.evicted.map(b => b.digest)).toEqual([oldOrphan, newOrphan, named.manifest])
    expect(r.after).toBe(quota)
    expect(r.overQuota).toBe(false)
    for (const d of [oldOrphan, newOrphan, named.manifest]) expect(await has(d)).toBe(false)
    for (const d of [pinned.manifest, pinned.layer, leased.manifest, leased.layer, named.layer]) expect(await has(d)).toBe(true)

    // With a quota of nothing, only pinned and leased content (and their children) remain.
    const all = await enforceQuota({ store, db, quota: 0, children, graceMs: 0 })
    expect(all.overQuota).toBe(true)
    expect(all.evicted.map(b => b.digest)).toEqual([named.layer])
    const left: Digest[] = []
    for await (const b of raw.walk()) left.push(b.digest)
    expect(left.sort()).toEqual([pinned.manifest, pinned.layer, leased.manifest, leased.layer].sort())
    expect(all.protectedBytes).toBe(all.after)

    // Released, the lease no longer protects.
    createLeases(db).release(lease)
    const after = await enforceQuota({ store, db, quota: 0, children, graceMs: 0 })
    expect(after.evicted.map(b => b.digest).sort()).toEqual([leased.manifest, leased.layer].sort())
  })

  it('never breaks a transfer in progress: a lease taken while eviction runs is honoured, and a leased blob streams whole', async () => {
    const a = await blob(`a-${'a'.repeat(200)}`, 1_000)
    const b = await blob(`b-${'b'.repeat(200)}`, 2_000)
    const streaming = await blob(`s-${'s'.repeat(300_000)}`, 500)
    const leases = createLeases(db)
    const held = leases.create('transfer', 60_000)
    leases.add(held, [streaming])
    // A reader with tiny chunks, read slowly, while eviction runs.
    const reader = await createFsContentStore({ root: join(root, 'store'), chunkSize: 4096 })
    const hash = createHash('sha256')
    const read = (async () => {
      for await (const chunk of reader.read(streaming)) { hash.update(chunk); await new Promise(resolve => setImmediate(resolve)) }
    })()
    // A second transfer starts mid-eviction: when `a` goes, it leases `b`.
    let lateLease: string | undefined
    const racing: ContentStore = {
      ...store,
      delete: async (d) => {
        const gone = await store.delete(d)
        if (d === a) { lateLease = leases.create('late-transfer', 60_000); leases.add(lateLease, [b]) }
        return gone
      }
    }
    const r = await enforceQuota({ store: racing, db, quota: 0, children, graceMs: 0 })
    await read
    expect(`sha256:${hash.digest('hex')}`).toBe(streaming)
    expect(r.evicted.map(x => x.digest)).toEqual([a])
    expect(await has(b)).toBe(true)
    expect(await has(streaming)).toBe(true)
    expect(lateLease).toBeDefined()
  })

  it('keeps fresh blobs within the grace period', async () => {
    const fresh = await blob('fresh', 1_000)
    const r = await enforceQuota({ store, db, quota: 0, children })
    expect(r.evicted).toEqual([])
    expect(r.overQuota).toBe(true)
    expect(await has(fresh)).toBe(true)
  })

  it('does nothing under quota', async () => {
    await blob('small', 1_000)
    const r = await enforceQuota({ store, db, quota: 1_000_000, children, graceMs: 0 })
    expect(r).toMatchObject({ evicted: [], bytesFreed: 0, overQuota: false })
  })
})

describe('pins', () => {
  it('pins digests and names; a pinned name follows its tag; unknown names and bad targets are refused', () => {
    const db = openDb(':memory:')
    const refs = createRefStore(db)
    const pins = createPins(db, refs)
    const d1 = `sha256:${'1'.repeat(64)}` as Digest
    const d2 = `sha256:${'2'.repeat(64)}` as Digest
    const d3 = `sha256:${'3'.repeat(64)}` as Digest
    refs.set('localhost:5000/site/app', 'v1', { digest: d1, mediaType: MANIFEST, size: 1 })
    expect(pins.pin('localhost:5000/site/app:v1')).toMatchObject({ target: 'localhost:5000/site/app:v1', kind: 'ref' })
    pins.pin(d3)
    pins.pin(d3)
    expect(pins.list().map(p => p.kind)).toEqual(['ref', 'digest'])
    expect(pins.roots().sort()).toEqual([d1, d3])
    refs.set('localhost:5000/site/app', 'v1', { digest: d2, mediaType: MANIFEST, size: 1 })
    expect(pins.roots().sort()).toEqual([d2, d3])
    expect(() => pins.pin('site/none:v1')).toThrow(expect.objectContaining({ name: 'NotFoundError' }))
    expect(() => pins.pin('no-tag')).toThrow(expect.objectContaining({ name: 'InvalidPinTargetError' }))
    expect(() => pins.pin('sha256:short')).toThrow(expect.objectContaining({ name: 'InvalidDigestError' }))
    expect(pins.unpin(d3)).toBe(true)
    expect(pins.unpin(d3)).toBe(false)
    expect(pins.roots()).toEqual([d2])
    db.close()
  })
})
