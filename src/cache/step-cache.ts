/**
 * The step cache, in the store's database: step key -> the layer that step
 * produced. A key hashes the parent key, the step's canonical text and the
 * digests of its inputs, so equal keys mean equal layers.
 */
import { z } from 'zod'
import type { Digest } from '../content/index.ts'
import type { KilnDb } from '../db/index.ts'
import { DigestSchema } from '../oci/index.ts'
import { sha256Digest } from '../content/index.ts'
import { STEP_CACHE_VERSION } from './constants.ts'
import type { ReferenceTable } from '../content/index.ts'

/** A layer as the step cache knows it: its descriptor (as stored) and its diffID. */
export interface CachedLayer {
  descriptor: { mediaType: string, digest: Digest, size: number }
  diffId: Digest
}

/** One step-cache entry: the step key and the layer it gave. */
export interface StepCacheRecord extends CachedLayer {
  key: Digest
}

/**
 * The step cache of one store. `put` replaces an existing entry for the key
 * (equal keys mean equal layers, so this only refreshes it); `list` returns
 * every entry, sorted by key, whether or not its blob is still in the store.
 */
export interface StepCache {
  get: (key: Digest) => CachedLayer | undefined
  put: (key: Digest, value: CachedLayer) => void
  list: () => StepCacheRecord[]
}

const MIGRATIONS = [
  `CREATE TABLE build_cache (
     key TEXT PRIMARY KEY,
     media_type TEXT NOT NULL,
     digest TEXT NOT NULL,
     size INTEGER NOT NULL,
     diff_id TEXT NOT NULL,
     created_at INTEGER NOT NULL
   );`
]

const RowSchema = z.object({ media_type: z.string(), digest: DigestSchema, size: z.number().int().nonnegative(), diff_id: DigestSchema })

const ListRowSchema = RowSchema.extend({ key: DigestSchema })

export function createStepCache (db: KilnDb): StepCache {
  db.migrate('build-cache', MIGRATIONS)
  const get = db.sql.prepare('SELECT media_type, digest, size, diff_id FROM build_cache WHERE key = ?')
  const all = db.sql.prepare('SELECT key, media_type, digest, size, diff_id FROM build_cache ORDER BY key')
  const put = db.sql.prepare('INSERT OR REPLACE INTO build_cache (key, media_type, digest, size, diff_id, created_at) VALUES (?, ?, ?, ?, ?, ?)')
  return {
    get: (key) => {
      const row = get.get(key)
      if (row === undefined) return undefined
      const r = RowSchema.parse(row)
      return { descriptor: { mediaType: r.media_type, digest: r.digest, size: r.size }, diffId: r.diff_id }
    },
    put: (key, v) => { put.run(key, v.descriptor.mediaType, v.descriptor.digest, v.descriptor.size, v.diffId, Date.now()) },
    list: () => all.all().map(row => {
      const r = ListRowSchema.parse(row)
      return { key: r.key, descriptor: { mediaType: r.media_type, digest: r.digest, size: r.size }, diffId: r.diff_id }
    })
  }
}

/** Key of a step: hash of the parent key, the canonical step and its inputs (in the given order). */
export function stepKey (parent: string, canonical: string, inputs: readonly string[] = []): Digest {
  return sha256Digest(JSON.stringify([STEP_CACHE_VERSION, parent, canonical, inputs]))
}

/**
 * A step cache elsewhere. On a hit `lookup` returns the layer with its blob
 * already in the builder's store (verified by digest) and, when it can, the
 * step's snapshot made under `snapshotsDir/<diffID hex>` (without one an
 * overlay build runs the step anyway). A miss or any failure is `undefined`:
 * a remote cache makes builds faster, never fails them. After a remote miss
 * the builder asks no more for the rest of that stage (later keys hash the
 * missed one, so nobody can have them without having it).
 */
export interface RemoteStepCache {
  lookup: (key: Digest, options: { snapshotsDir: string, signal?: AbortSignal }) => Promise<CachedLayer | undefined>
}

/** The step cache's rows as `kiln store verify` checks them: each names its layer blob (src/content/verify.ts). */
export function stepCacheReferences (db: KilnDb): ReferenceTable {
  db.migrate('build-cache', MIGRATIONS)
  const list = db.sql.prepare('SELECT key, digest FROM build_cache')
  const drop = db.sql.prepare('DELETE FROM build_cache WHERE digest = ?')
  return {
    name: 'build cache',
    list: () => (list.all() as Array<{ key: string, digest: string }>).map(r => ({ digest: r.digest as Digest, what: `step ${r.key}` })),
    drop: (digest) => Number(drop.run(digest).changes)
  }
}
