/**
 * Garbage collection: mark every blob reachable from the roots (refs, pins,
 * leases), sweep the rest.
 *
 * The store does not know what a manifest is: the caller hands in `children`,
 * which lists the digests a blob refers to (the OCI module knows how). A blob
 * younger than `graceMs` is kept even if unreachable, because another process
 * may have just ingested it and not yet written the ref that will hold it;
 * leases cover longer work (a build, a transfer) explicitly.
 */
import { stat } from 'node:fs/promises'
import type { BlobReader, ContentStore } from './index.ts'
import type { Digest } from './digest.ts'
import type { KilnDb } from '../db/index.ts'

export interface GcOptions {
  store: ContentStore
  roots: Iterable<Digest>
  /** The digests a blob refers to; [] for a blob that refers to nothing (layers, configs). */
  children: (digest: Digest) => Promise<Digest[]>
  /** Keep unreachable blobs younger than this; default 15 minutes. */
  graceMs?: number
  /** Report what would go, delete nothing. */
  dryRun?: boolean
  now?: number
}

export interface GcResult {
  kept: number
  removed: Array<{ digest: Digest, size: number }>
  bytesFreed: number
  /** Reachable digests that are not in the store (a ref to an image whose blobs were never fetched). */
  missing: Digest[]
}

/**
 * Adds `from` and everything reachable from it to `into` (digests already in
 * `into` are not walked again, so several calls can share one set). Returns
 * the reachable digests that are not in the store.
 */
export async function markReachable (from: Iterable<Digest>, into: Set<Digest>, store: BlobReader, children: (digest: Digest) => Promise<Digest[]>): Promise<Digest[]> {
  const missing: Digest[] = []
  const queue = [...from]
  while (queue.length > 0) {
    const d = queue.pop() as Digest
    if (into.has(d)) continue
    into.add(d)
    if (!(await store.has(d))) { missing.push(d); continue }
    for (const c of await children(d)) if (!into.has(c)) queue.push(c)
  }
  return missing
}

export async function collectGarbage (options: GcOptions): Promise<GcResult> {
  const { store } = options
  const graceMs = options.graceMs ?? 15 * 60 * 1000
  const now = options.now ?? Date.now()
  const marked = new Set<Digest>()
  const missing = await markReachable(options.roots, marked, store, options.children)
  const removed: GcResult['removed'] = []
  let kept = 0
  for await (const blob of store.walk()) {
    if (marked.has(blob.digest)) { kept++; continue }
    if (graceMs > 0) {
      const st = await stat(await store.path(blob.digest)).catch(() => undefined)
      if (st !== undefined && now - st.mtimeMs < graceMs) { kept++; continue }
    }
    if (options.dryRun !== true) await store.delete(blob.digest)
    removed.push(blob)
  }
  return { kept, removed, bytesFreed: removed.reduce((n, b) => n + b.size, 0), missing }
}

/**
 * Leases hold blobs for work in progress: a build or a transfer takes a lease
 * on what it writes, and GC keeps every leased digest until the lease is
 * released or expires (a crashed holder's leases run out on their own).
 */
export interface Leases {
  /** Creates a lease that expires after ttlMs; returns its id. */
  create: (holder: string, ttlMs: number) => string
  add: (lease: string, digests: Iterable<Digest>) => void
  release: (lease: string) => void
  /**
   * The one lease of `holder`: replaces that holder's earlier leases with a
   * new one on `digests`, so work repeated on the same result (the same job
   * result built again) renews its lease instead of adding one. Returns its id.
   */
  keep: (holder: string, ttlMs: number, digests: Iterable<Digest>) => string
  /** Every digest held by an unexpired lease. */
  held: (now?: number) => Set<Digest>
}

const LEASE_MIGRATIONS = [
  `CREATE TABLE leases (id TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at INTEGER NOT NULL);
   CREATE TABLE lease_blobs (lease TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE, digest TEXT NOT NULL, PRIMARY KEY (lease, digest));`
]

export function createLeases (db: KilnDb): Leases {
  db.migrate('leases', LEASE_MIGRATIONS)
  const ins = db.sql.prepare('INSERT INTO leases (id, holder, expires_at) VALUES (?, ?, ?)')
  const add = db.sql.prepare('INSERT OR IGNORE INTO lease_blobs (lease, digest) VALUES (?, ?)')
  const del = db.sql.prepare('DELETE FROM leases WHERE id = ?')
  const delHolder = db.sql.prepare('DELETE FROM leases WHERE holder = ?')
  const expire = db.sql.prepare('DELETE FROM leases WHERE expires_at <= ?')
  const held = db.sql.prepare('SELECT DISTINCT b.digest FROM lease_blobs b JOIN leases l ON l.id = b.lease WHERE l.expires_at > ?')
  const create = (holder: string, ttlMs: number): string => {
    const id = `${holder}-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 10)}`
    ins.run(id, holder, Date.now() + ttlMs)
    return id
  }
  return {
    create,
    add: (lease, digests) => { db.transaction(() => { for (const d of digests) add.run(lease, d) }) },
    keep: (holder, ttlMs, digests) => db.transaction(() => {
      delHolder.run(holder)
      const id = create(holder, ttlMs)
      for (const d of digests) add.run(id, d)
      return id
    }),
    release: (lease) => { del.run(lease) },
    held: (now = Date.now()) => {
      expire.run(now)
      return new Set((held.all(now) as Array<{ digest: string }>).map(r => r.digest as Digest))
    }
  }
}
