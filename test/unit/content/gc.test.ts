import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createBuildLeases, createFsContentStore, collectGarbage, createLeases, sha256Digest } from '../../../src/content/index.ts'
import { openDb } from '../../../src/db/index.ts'
import type { ContentStore, Digest } from '../../../src/content/index.ts'

describe('garbage collection', () => {
  let root: string
  let store: ContentStore
  // A toy graph: a "manifest" blob's text is the digests it refers to, one per line.
  const children = async (d: Digest): Promise<Digest[]> => {
    const text = Buffer.from(await store.readBytes(d)).toString()
    return text.startsWith('refs\n') ? text.split('\n').slice(1).filter(Boolean) as Digest[] : []
  }
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'kiln-gc-'))
    store = await createFsContentStore({ root })
  })
  afterEach(async () => { await rm(root, { recursive: true, force: true }) })

  it('removes only unreachable blobs, never a referenced one', async () => {
    const layer = await store.ingest(Buffer.from('layer'))
    const config = await store.ingest(Buffer.from('config'))
    const manifest = await store.ingest(Buffer.from(`refs\n${config.digest}\n${layer.digest}`))
    const orphan = await store.ingest(Buffer.from('orphan'))
    const dry = await collectGarbage({ store, roots: [manifest.digest], children, graceMs: 0, dryRun: true })
    expect(dry.removed.map(b => b.digest)).toEqual([orphan.digest])
    expect(await store.has(orphan.digest)).toBe(true)
    const r = await collectGarbage({ store, roots: [manifest.digest], children, graceMs: 0 })
    expect(r.removed).toEqual([orphan])
    expect(r.bytesFreed).toBe(6)
    expect(r.kept).toBe(3)
    for (const d of [layer, config, manifest]) expect(await store.has(d.digest)).toBe(true)
    expect(await store.has(orphan.digest)).toBe(false)
  })

  it('keeps young blobs within the grace period and reports missing roots', async () => {
    const young = await store.ingest(Buffer.from('young'))
    const absent = sha256Digest('never stored')
    const r = await collectGarbage({ store, roots: [absent], children })
    expect(r.removed).toEqual([])
    expect(r.missing).toEqual([absent])
    expect(await store.has(young.digest)).toBe(true)
  })

  it('leases hold blobs until released or expired', async () => {
    const db = openDb(':memory:')
    const leases = createLeases(db)
    const a = await store.ingest(Buffer.from('a'))
    const b = await store.ingest(Buffer.from('b'))
    const l1 = leases.create('build', 60_000)
    leases.add(l1, [a.digest])
    const l2 = leases.create('transfer', 10)
    leases.add(l2, [b.digest])
    expect(leases.held(Date.now()).has(a.digest)).toBe(true)
    expect(leases.held(Date.now() + 1000).has(b.digest)).toBe(false)
    const r = await collectGarbage({ store, roots: leases.held(Date.now() + 1000), children, graceMs: 0 })
    expect(r.removed.map(x => x.digest)).toEqual([b.digest])
    leases.release(l1)
    expect(leases.held().size).toBe(0)
    db.close()
  })

  it('keep gives a holder one lease: renewed, never piled up, and it still holds what it names', async () => {
    const db = openDb(':memory:')
    const leases = createLeases(db)
    const a = await store.ingest(Buffer.from('kept a'))
    const b = await store.ingest(Buffer.from('kept b'))
    for (let i = 0; i < 5; i++) leases.keep('job-result:x', 60_000, [a.digest])
    leases.keep('job-result:y', 60_000, [b.digest])
    const count = (): number => (db.sql.prepare('SELECT COUNT(*) AS n FROM leases').get() as { n: number }).n
    expect(count()).toBe(2)
    expect([...leases.held()].sort()).toEqual([a.digest, b.digest].sort())
    // The renewal replaces what the holder held.
    leases.keep('job-result:x', 60_000, [b.digest])
    expect([...leases.held()]).toEqual([b.digest])
    expect(count()).toBe(2)
    db.close()
  })

  it('a build holds what it reads and writes until it returns, and gc run meanwhile keeps it', async () => {
    const db = openDb(':memory:')
    const leases = createLeases(db)
    const building = createBuildLeases(store, leases)
    const base = await store.ingest(Buffer.from('base layer'))
    let during: Set<string> = new Set()
    const layer = await building.hold(async () => {
      await building.store.readBytes(base.digest)
      const written = await building.store.ingest(Buffer.from('new layer'))
      during = leases.held()
      const r = await collectGarbage({ store, roots: leases.held(), children, graceMs: 0 })
      expect(r.removed).toEqual([])
      return written
    })
    expect([...during].sort()).toEqual([base.digest, layer.digest].sort())
    expect(leases.held().size).toBe(0)
    const after = await collectGarbage({ store, roots: leases.held(), children, graceMs: 0 })
    expect(after.removed.map(b => b.digest).sort()).toEqual([base.digest, layer.digest].sort())
    db.close()
  })
})
