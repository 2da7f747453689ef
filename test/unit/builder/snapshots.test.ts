/**
 * The builder's snapshots and unpacked bases beside the store: what counts
 * as backed, what `kiln gc` removes, what the quota evicts first, and that
 * nothing goes while a build runs.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { holdBuildLock } from '../../../src/builder/build-locks.ts'
import { createStepCache } from '../../../src/cache/index.ts'
import { createBuildCache } from '../../../src/builder/snapshots.ts'
import { markUsed } from '../../../src/builder/sandbox/scratch.ts'
import type { BuildCache } from '../../../src/builder/snapshots.ts'
import { digestHex, sha256Digest } from '../../../src/content/index.ts'
import { openLocalStore } from '../../../src/content/index.ts'
import type { Digest, LocalStore } from '../../../src/content/index.ts'
import { enforceQuota } from '../../../src/content/quota.ts'

const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip'
const LONG_AGO = 1_000_000

describe('build cache beside the store', () => {
  let dir: string
  let store: LocalStore
  let cache: BuildCache
  let work: string
  const paths: Record<string, string> = {}
  const base = (p: string | undefined): string | undefined => p?.split('/').pop()

  /** A dir of `kb` KiB of file data, made long ago (outside any grace period). */
  const entry = (path: string, kb: number): string => {
    mkdirSync(join(path, 'etc'), { recursive: true })
    writeFileSync(join(path, 'etc', 'data'), Buffer.alloc(kb * 1024, 7))
    utimesSync(path, LONG_AGO, LONG_AGO)
    return path
  }

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiln-test-snapshots-'))
    store = await openLocalStore(join(dir, 'data'))
    work = join(store.root, 'build')
    cache = createBuildCache({ workDir: work, db: store.db, store: store.content })
    const steps = createStepCache(store.db)
    const layer = await store.content.ingest(Buffer.from('a layer'))
    const manifest = await store.content.ingest(Buffer.from('{"a":"manifest"}'))
    const gone = sha256Digest('a layer gc removed')
    const keep = sha256Digest('step kept'); const lost = sha256Digest('step lost')
    const diffKept = sha256Digest('diff kept'); const diffLost = sha256Digest('diff lost')
    steps.put(keep, { descriptor: { mediaType: LAYER, digest: layer.digest, size: layer.size }, diffId: diffKept })
    steps.put(lost, { descriptor: { mediaType: LAYER, digest: gone, size: 9 }, diffId: diffLost })
    Object.assign(paths, {
      baseLost: entry(join(work, 'rootfs', `${digestHex(sha256Digest('gone manifest'))}-1000`), 16),
      stepLost: entry(join(work, 'snapshots', `k-${digestHex(lost)}`), 8),
      importLost: entry(join(work, 'snapshots', digestHex(diffLost)), 8),
      baseKept: entry(join(work, 'rootfs', `${digestHex(manifest.digest)}-1000`), 16),
      importKept: entry(join(work, 'snapshots', digestHex(diffKept)), 8),
      stepKept: entry(join(work, 'snapshots', `k-${digestHex(keep)}`), 8),
      scratch: entry(join(work, 'rootfs', 'scratch-1000'), 0)
    })
    // Used by RUN steps in this order (the order above): least recently used first.
    for (const p of Object.values(paths)) { await new Promise(resolve => setTimeout(resolve, 5)); await markUsed([p]) }
  })
  afterEach(() => { store.close(); rmSync(dir, { recursive: true, force: true }) })

  it('counts snapshots and unpacked bases, in bytes on disk', async () => {
    const u = await cache.usage()
    expect(u.snapshots.count).toBe(4)
    expect(u.bases.count).toBe(3)
    expect(u.snapshots.bytes).toBeGreaterThanOrEqual(4 * 8 * 1024)
    expect(u.bases.bytes).toBeGreaterThanOrEqual(2 * 16 * 1024)
    expect(u.bytes).toBe(u.snapshots.bytes + u.bases.bytes)
  })

  it('gc removes the entries whose blob is gone, and nothing while a build runs', async () => {
    const lock = await holdBuildLock(work)
    expect(await cache.collect({ graceMs: 0 })).toEqual({ removed: [], bytesFreed: 0, skipped: true })
    await lock.release()
    const dry = await cache.collect({ graceMs: 0, dryRun: true })
    expect(dry.removed.map(r => r.path).sort()).toEqual([paths.stepLost, paths.importLost, paths.baseLost].sort())
    expect((await cache.usage()).snapshots.count).toBe(4)
    const r = await cache.collect({ graceMs: 0 })
    expect(r.removed.map(x => x.path).sort()).toEqual(dry.removed.map(x => x.path).sort())
    expect(r.bytesFreed).toBeGreaterThanOrEqual(8 * 1024 * 2 + 16 * 1024)
    expect(readdirSync(join(work, 'snapshots')).sort()).toEqual([paths.stepKept, paths.importKept].map(base).sort())
    expect(readdirSync(join(work, 'rootfs')).sort()).toEqual([paths.baseKept, paths.scratch].map(base).sort())
    // Fresh entries stay within the grace period whatever backs them.
    entry(paths.stepLost as string, 1)
    utimesSync(paths.stepLost as string, Date.now() / 1000, Date.now() / 1000)
    expect((await cache.collect({ graceMs: 60_000 })).removed).toEqual([])
  })

  it('the quota counts them and evicts them first, least recently used first, but not while a build runs', async () => {
    const blobs = async (): Promise<number> => { let n = 0; for await (const b of store.content.walk()) n += b.size; return n }
    const children = async (): Promise<Digest[]> => []
    const u = await cache.usage()
    const quota = await blobs() + u.bytes - 1
    const lock = await holdBuildLock(work)
    const held = await enforceQuota({ store: store.content, db: store.db, quota, children, graceMs: 60_000, derived: cache })
    expect(held).toMatchObject({ before: quota + 1, derivedEvicted: [], overQuota: true })
    expect(held.protectedBytes).toBeGreaterThanOrEqual(u.bytes)
    await lock.release()
    // One byte over: the least recently used entry goes, and nothing else.
    const r = await enforceQuota({ store: store.content, db: store.db, quota, children, graceMs: 60_000, derived: cache })
    expect(r.derivedEvicted.map(e => e.id)).toEqual([paths.baseLost])
    expect(r.evicted).toEqual([])
    expect(r.overQuota).toBe(false)
    // Far over: every entry goes, the most recently used (scratch) last, before any blob (the blobs are fresh, hence kept here).
    const all = await enforceQuota({ store: store.content, db: store.db, quota: await blobs(), children, graceMs: 60_000, derived: cache })
    expect(all.derivedEvicted.map(e => e.id)).toEqual([paths.stepLost, paths.importLost, paths.baseKept, paths.importKept, paths.stepKept, paths.scratch])
    expect(all.evicted).toEqual([])
    expect((await cache.usage()).bytes).toBe(0)
  })
})
