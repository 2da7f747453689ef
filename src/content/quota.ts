/**
 * The store quota (`store.quota` in kiln.yaml): when the store holds more
 * than its quota, least recently used content is evicted until it fits.
 *
 * Policy, in order:
 * 1. Never evicted: what a pin keeps (see ./pins.ts) and what a lease holds
 *    (a build or transfer in progress, see ./gc.ts), each with everything
 *    reachable from it; and blobs younger than the grace period (an ingest
 *    whose ref or lease is about to be written).
 * 2. Evicted first: blobs no image name reaches (pulled-through blobs, old
 *    build outputs, step-cache layers), least recently used first.
 * 3. Then blobs of named images that are not pinned, least recently used
 *    first. The names stay: such an image is incomplete until its blobs are
 *    fetched again from the network (`kiln gc` lists them as missing). Pin
 *    what must stay whole on this node.
 *
 * "Used" is the last read or write through `createTrackedStore`, recorded
 * in the `blob_access` table at a resolution of ACCESS_RESOLUTION_MS; a blob
 * never read through it counts from its file's mtime.
 *
 * Caches made from blobs beside the store (a DerivedCache: the builder's
 * step snapshots and unpacked bases, src/builder/snapshots.ts) count against
 * the quota too, and go before any blob, least recently used first: each
 * is an unpacked copy of blobs the store keeps, so losing one costs at most
 * rerunning a step or unpacking a base again. None goes while a build runs.
 */
import { stat } from 'node:fs/promises'
import { z } from 'zod'
import type { BlobInfo, ContentStore } from './index.ts'
import type { KilnDb } from '../db/index.ts'
import type { Digest } from './digest.ts'
import { createLeases, markReachable } from './gc.ts'
import { createPins } from './pins.ts'
import { createRefStore } from './refs.ts'

/** Accesses closer together than this update the record once (hot blobs are read often). */
export const ACCESS_RESOLUTION_MS = 60_000
/** Default grace for fresh blobs, the same as GC's. */
export const QUOTA_GRACE_MS = 15 * 60 * 1000

/** A size that is neither a number of bytes nor like "500GiB" / "20G". */
export class InvalidByteSizeError extends Error {
  static override readonly name = 'InvalidByteSizeError'
  override readonly name = InvalidByteSizeError.name
}

const UNITS: Record<string, number> = { '': 0, K: 1, M: 2, G: 3, T: 4, P: 5 }

/**
 * Bytes from a config size: a number, or a string with an SI unit (K, M, G,
 * T: powers of 1000) or an IEC unit (Ki, Mi, Gi, Ti: powers of 1024), with
 * an optional trailing B. `500GiB` = 500 * 2^30, `20G` = 20 * 10^9.
 */
export function parseByteSize (value: number | string): number {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value >= 0) return value
    throw new InvalidByteSizeError(`invalid size ${value}: expected a whole number of bytes`)
  }
  const m = /^(\d+(?:\.\d+)?)\s*(?:([KMGTP])(i)?)?B?$/i.exec(value.trim())
  if (m === null) throw new InvalidByteSizeError(`invalid size ${JSON.stringify(value)}: expected e.g. 500GiB, 20G or 1048576`)
  const power = UNITS[(m[2] ?? '').toUpperCase()] as number
  const base = m[3] === undefined ? 1000 : 1024
  return Math.floor(Number(m[1]) * base ** power)
}

/** When each blob was last used. */
export interface AccessLog {
  /** Records a use now (or at `at`); writes at most once per ACCESS_RESOLUTION_MS per blob. */
  touch: (digest: Digest, at?: number) => void
  lastAccess: (digest: Digest) => number | undefined
  forget: (digest: Digest) => void
}

const ACCESS_MIGRATIONS = ['CREATE TABLE blob_access (digest TEXT PRIMARY KEY, last_access INTEGER NOT NULL);']
const AccessRow = z.object({ last_access: z.number().int() })

export function createAccessLog (db: KilnDb, now: () => number = Date.now): AccessLog {
  db.migrate('blob_access', ACCESS_MIGRATIONS)
  const upsert = db.sql.prepare('INSERT INTO blob_access (digest, last_access) VALUES (?, ?) ON CONFLICT(digest) DO UPDATE SET last_access = max(last_access, excluded.last_access)')
  const get = db.sql.prepare('SELECT last_access FROM blob_access WHERE digest = ?')
  const del = db.sql.prepare('DELETE FROM blob_access WHERE digest = ?')
  const written = new Map<Digest, number>()
  return {
    touch: (digest, at = now()) => {
      const last = written.get(digest)
      if (last !== undefined && at - last < ACCESS_RESOLUTION_MS && at >= last) return
      upsert.run(digest, at)
      written.set(digest, at)
    },
    lastAccess: (digest) => {
      const row = get.get(digest)
      return row === undefined ? undefined : AccessRow.parse(row).last_access
    },
    forget: (digest) => { del.run(digest); written.delete(digest) }
  }
}

const UNTRACKED = Symbol('kiln.untracked-store')

/** The store under a tracked store (or the store itself): for looking at blobs without counting it as use. */
export function untracked (store: ContentStore): ContentStore {
  return (store as ContentStore & { [UNTRACKED]?: ContentStore })[UNTRACKED] ?? store
}

export interface TrackedStoreOptions {
  /** Clock for access times; default Date.now. */
  now?: () => number
}

/**
 * The same store, recording each read and ingest in the access log, so
 * that quota eviction knows what was used least recently. The agent and
 * the gateway should serve through this wrapper.
 */
export function createTrackedStore (store: ContentStore, db: KilnDb, options: TrackedStoreOptions = {}): ContentStore {
  const log = createAccessLog(db, options.now)
  const tracked: ContentStore & { [UNTRACKED]: ContentStore } = {
    [UNTRACKED]: untracked(store),
    info: async (d) => await store.info(d),
    has: async (d) => await store.has(d),
    read: (d, o) => { log.touch(d); return store.read(d, o) },
    readBytes: async (d, max) => { const b = await store.readBytes(d, max); log.touch(d); return b },
    path: async (d) => { const p = await store.path(d); log.touch(d); return p },
    ingest: async (source, expected, o) => { const info = await store.ingest(source, expected, o); log.touch(info.digest); return info },
    ingestFile: async (file, expected, o) => { const info = await store.ingestFile(file, expected, o); log.touch(info.digest); return info },
    openPartial: async (d, size) => {
      const partial = await store.openPartial(d, size)
      return {
        digest: partial.digest,
        size: partial.size,
        written: () => partial.written(),
        writeAt: async (offset, data) => { await partial.writeAt(offset, data) },
        readAt: async (offset, length, into) => await partial.readAt(offset, length, into),
        sync: async () => { await partial.sync() },
        commit: async (options) => { const info = await partial.commit(options); log.touch(info.digest); return info },
        abort: async () => { await partial.abort() },
        close: async () => { await partial.close() }
      }
    },
    delete: async (d) => { const had = await store.delete(d); log.forget(d); return had },
    walk: () => store.walk()
  }
  return tracked
}

/** One entry of a DerivedCache. */
export interface DerivedEntry {
  id: string
  /** Bytes it holds on disk. */
  bytes: number
  usedAt: number
  madeAt: number
}

/** Caches on disk made from blobs, bounded by the same quota (see the top of this file). */
export interface DerivedCache {
  /** Bytes every entry holds. */
  total: () => Promise<number>
  /** The entries that may go now: none while a build runs. */
  evictable: () => Promise<DerivedEntry[]>
  /** Removes one; false when it had to stay after all (a build started meanwhile). */
  evict: (entry: DerivedEntry) => Promise<boolean>
}

export interface EnforceQuotaOptions {
  store: ContentStore
  db: KilnDb
  /** Bytes; the store is trimmed until it holds at most this. */
  quota: number
  /** The digests a blob refers to (as for collectGarbage). */
  children: (digest: Digest) => Promise<Digest[]>
  /** Keep blobs (and derived entries) younger than this; default QUOTA_GRACE_MS. */
  graceMs?: number
  /** Caches made from the store's blobs, counted and evicted first. */
  derived?: DerivedCache
  dryRun?: boolean
  now?: number
}

export interface QuotaResult {
  quota: number
  /** Bytes in the store (and the derived cache) before and after. */
  before: number
  after: number
  evicted: BlobInfo[]
  /** Derived cache entries evicted (with `derived`). */
  derivedEvicted: Array<{ id: string, bytes: number }>
  bytesFreed: number
  /** Bytes that may not be evicted (pinned, leased, fresh). */
  protectedBytes: number
  /** Still over quota: everything left is protected. */
  overQuota: boolean
}

interface Candidate extends BlobInfo { named: boolean, usedAt: number }

export async function enforceQuota (options: EnforceQuotaOptions): Promise<QuotaResult> {
  const { store, db, quota, children } = options
  const now = options.now ?? Date.now()
  const graceMs = options.graceMs ?? QUOTA_GRACE_MS
  const refs = createRefStore(db)
  const leases = createLeases(db)
  const log = createAccessLog(db)

  const blobs: BlobInfo[] = []
  for await (const b of store.walk()) blobs.push(b)
  const derivedBytes = await options.derived?.total() ?? 0
  const before = blobs.reduce((n, b) => n + b.size, 0) + derivedBytes
  const result: QuotaResult = { quota, before, after: before, evicted: [], derivedEvicted: [], bytesFreed: 0, protectedBytes: 0, overQuota: false }
  if (before <= quota) return result

  let total = before
  if (options.derived !== undefined) {
    const entries = (await options.derived.evictable()).sort((a, b) => a.usedAt - b.usedAt)
    result.protectedBytes += derivedBytes - entries.reduce((n, e) => n + e.bytes, 0)
    for (const e of entries) {
      if (total <= quota) break
      if (now - e.madeAt < graceMs || (options.dryRun !== true && !await options.derived.evict(e))) { result.protectedBytes += e.bytes; continue }
      result.derivedEvicted.push({ id: e.id, bytes: e.bytes })
      total -= e.bytes
    }
  }
  if (total <= quota) return { ...result, after: total, bytesFreed: before - total }

  const keep = new Set<Digest>()
  await markReachable([...createPins(db, refs).roots(), ...leases.held(now)], keep, store, children)
  const named = new Set<Digest>()
  await markReachable(refs.list().map(r => r.digest), named, store, children)

  const candidates: Candidate[] = []
  for (const b of blobs) {
    if (keep.has(b.digest)) { result.protectedBytes += b.size; continue }
    const st = await stat(await untracked(store).path(b.digest)).catch(() => undefined)
    if (st === undefined) continue
    if (now - st.mtimeMs < graceMs) { result.protectedBytes += b.size; continue }
    candidates.push({ ...b, named: named.has(b.digest), usedAt: log.lastAccess(b.digest) ?? st.mtimeMs })
  }
  candidates.sort((a, b) => Number(a.named) - Number(b.named) || a.usedAt - b.usedAt)

  for (const c of candidates) {
    if (total <= quota) break
    // A build or transfer may have taken a lease since we looked: ask again before each removal.
    const held = [...leases.held()].filter(d => !keep.has(d))
    if (held.length > 0) await markReachable(held, keep, store, children)
    if (keep.has(c.digest)) { result.protectedBytes += c.size; continue }
    if (options.dryRun !== true) {
      await store.delete(c.digest)
      log.forget(c.digest)
    }
    result.evicted.push({ digest: c.digest, size: c.size })
    total -= c.size
  }
  result.bytesFreed = before - total
  result.after = total
  result.overQuota = total > quota
  return result
}
