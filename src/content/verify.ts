/**
 * `kiln store verify`: checks a store against itself (docs/store.md).
 *
 * Terms:
 * - a *corrupt blob* is a file under blobs/ whose bytes do not hash to its
 *   name (a disk error, an edit, a crash the store's atomic rename did not
 *   cover); `--repair` moves it aside to `<store>/quarantine/`, never
 *   deletes it;
 * - a *reference table* is a database table of some module that names
 *   blobs (refs, pins, access times, the step cache, the gateway's
 *   repositories); a row naming a blob the store lacks is *dangling*, and
 *   `--repair` drops it (each module drops its own rows: `drop`);
 * - an *incomplete image* is a manifest or index the store holds whose
 *   children it lacks. One that a ref or pin keeps is a problem (re-pull
 *   it); one nothing keeps is what an interrupted pull leaves, and `kiln gc`
 *   removes it: it is counted, not reported as wrong.
 *
 * `quick` re-hashes every small blob (manifests and configs, needed for the
 * reference check anyway) and a random sample of the large ones.
 */
import { createHash, randomInt } from 'node:crypto'
import { rename } from 'node:fs/promises'
import { join } from 'node:path'
import type { BlobReader, BlobManager, Digest } from './index.ts'
import { digestHex } from './digest.ts'
import { createPins } from './pins.ts'
import { createAccessLog } from './quota.ts'
import type { RefStore } from './refs.ts'
import type { KilnDb } from '../db/index.ts'
import { isErrno, mkdirPrivate } from '../util/fs.ts'
import { isErrorOf } from '../util/error-class.ts'
import { NotFoundError } from './errors.ts'

/** Blobs up to this size are always re-hashed (manifests, configs, small layers). */
export const SMALL_BLOB_BYTES = 1024 * 1024

export interface ReferenceTable {
  /** For reports, e.g. "refs", "build cache". */
  name: string
  /** Every blob the table names, with what the row is ("app:1", "step sha256:…"). */
  list: () => Array<{ digest: Digest, what: string }>
  /** Drops the rows that name `digest`; returns how many. */
  drop: (digest: Digest) => number
}

export type StoreProblem =
  | { kind: 'corrupt-blob', digest: Digest, actual: Digest, repaired: boolean }
  | { kind: 'dangling-row', table: string, what: string, digest: Digest, repaired: boolean }
  | { kind: 'incomplete-image', digest: Digest, missing: Digest[], keptBy: string[], repaired: false }

export interface VerifyOptions {
  /** Fraction (0..1] of large blobs re-hashed; default: every blob. */
  sample?: number
  repair?: boolean
  /** The digests a blob refers to (src/oci's blobChildren: [] for a leaf, quickly for a large blob). */
  children: (digest: Digest) => Promise<Digest[]>
  /** The tables to check, from every module that names blobs. */
  tables: ReferenceTable[]
  /** What keeps images alive (refs and pins): an incomplete image they keep is a problem. */
  roots: Array<{ digest: Digest, what: string }>
  signal?: AbortSignal
  onProgress?: (p: { done: number, total: number, bytes: number }) => void
}

export interface VerifyReport {
  blobs: number
  bytes: number
  hashed: number
  hashedBytes: number
  problems: StoreProblem[]
  /** Incomplete images nothing keeps (an interrupted pull; `kiln gc` removes them). */
  unreferencedIncomplete: number
  /** Where repaired blobs were moved, when any were. */
  quarantine?: string
}

async function hashBlob (store: BlobReader, digest: Digest, signal?: AbortSignal): Promise<Digest | undefined> {
  const h = createHash('sha256')
  try {
    for await (const chunk of store.read(digest, signal !== undefined ? { signal } : {})) h.update(chunk)
  } catch (err) {
    if (isErrorOf(err, NotFoundError) || isErrno(err, 'ENOENT')) return undefined // removed meanwhile (gc)
    throw err
  }
  return `sha256:${h.digest('hex')}`
}

export async function verifyStore (store: BlobReader & Pick<BlobManager, 'walk'>, storeRoot: string, options: VerifyOptions): Promise<VerifyReport> {
  const { signal } = options
  const problems: StoreProblem[] = []
  const present = new Map<Digest, number>()
  for await (const b of store.walk()) present.set(b.digest, b.size)
  const report: VerifyReport = { blobs: present.size, bytes: 0, hashed: 0, hashedBytes: 0, problems, unreferencedIncomplete: 0 }
  for (const size of present.values()) report.bytes += size

  // 1. Blobs: bytes against names.
  const quarantine = join(storeRoot, 'quarantine')
  let done = 0
  for (const [digest, size] of present) {
    signal?.throwIfAborted()
    done++
    const check = options.sample === undefined || size <= SMALL_BLOB_BYTES || randomInt(1_000_000) < options.sample * 1_000_000
    if (check) {
      const actual = await hashBlob(store, digest, signal)
      if (actual === undefined) { present.delete(digest); continue }
      report.hashed++
      report.hashedBytes += size
      if (actual !== digest) {
        let repaired = false
        if (options.repair === true) {
          await mkdirPrivate(quarantine)
          await rename(await store.path(digest), join(quarantine, `${digestHex(digest)}.${Date.now()}`))
          present.delete(digest)
          report.quarantine = quarantine
          repaired = true
        }
        problems.push({ kind: 'corrupt-blob', digest, actual, repaired })
      }
    }
    options.onProgress?.({ done, total: report.blobs, bytes: report.hashedBytes })
  }

  // 2. Images: every child of a manifest or index is there.
  const kept = new Map<Digest, string[]>()
  for (const r of options.roots) kept.set(r.digest, [...kept.get(r.digest) ?? [], r.what])
  const missingOf = new Map<Digest, Digest[]>()
  // Read once per blob: the check for missing children and the marking from the roots both need them.
  const childrenOf = new Map<Digest, Digest[]>()
  const children = async (d: Digest): Promise<Digest[]> => {
    let c = childrenOf.get(d)
    if (c === undefined) { c = await options.children(d).catch(() => []); childrenOf.set(d, c) }
    return c
  }
  for (const digest of present.keys()) {
    signal?.throwIfAborted()
    const missing = (await children(digest)).filter(c => !present.has(c))
    if (missing.length > 0) missingOf.set(digest, missing)
  }
  // An image is kept when a root reaches it (an index's manifest is kept by the index's ref).
  const keptBy = new Map<Digest, string[]>()
  const mark = async (d: Digest, by: string[], seen: Set<Digest>): Promise<void> => {
    if (seen.has(d) || !present.has(d)) return
    seen.add(d)
    keptBy.set(d, [...keptBy.get(d) ?? [], ...by])
    for (const c of await children(d)) await mark(c, by, seen)
  }
  for (const [d, by] of kept) await mark(d, by, new Set())
  for (const [digest, missing] of missingOf) {
    const by = keptBy.get(digest)
    if (by === undefined) { report.unreferencedIncomplete++; continue }
    problems.push({ kind: 'incomplete-image', digest, missing, keptBy: [...new Set(by)], repaired: false })
  }

  // 3. Database rows naming blobs the store lacks.
  for (const table of options.tables) {
    const dangling = new Map<Digest, string[]>()
    for (const row of table.list()) if (!present.has(row.digest)) dangling.set(row.digest, [...dangling.get(row.digest) ?? [], row.what])
    for (const [digest, whats] of dangling) {
      const repaired = options.repair === true && table.drop(digest) > 0
      for (const what of whats) problems.push({ kind: 'dangling-row', table: table.name, what, digest, repaired })
    }
  }
  return report
}

/**
 * The content module's own tables that name blobs: refs, digest pins,
 * access times. Leases are not among them: a lease may hold a blob before
 * it arrives (a pull in progress) and expires by itself.
 */
export function contentReferenceTables (db: KilnDb, refs: RefStore): ReferenceTable[] {
  createPins(db, refs)
  createAccessLog(db)
  const pins = { list: db.sql.prepare("SELECT target FROM pins WHERE kind = 'digest'"), drop: db.sql.prepare("DELETE FROM pins WHERE kind = 'digest' AND target = ?") }
  const access = { list: db.sql.prepare('SELECT digest FROM blob_access'), drop: db.sql.prepare('DELETE FROM blob_access WHERE digest = ?') }
  const rows = (stmt: { all: () => unknown[] }): Array<Record<string, string>> => stmt.all() as Array<Record<string, string>>
  return [
    {
      name: 'refs',
      list: () => refs.list().map(r => ({ digest: r.digest, what: `${r.repository}:${r.tag}` })),
      drop: (digest) => refs.byDigest(digest).filter(r => refs.delete(r.repository, r.tag)).length
    },
    { name: 'pins', list: () => rows(pins.list).map(r => ({ digest: r.target as Digest, what: `pin ${r.target as string}` })), drop: (d) => Number(pins.drop.run(d).changes) },
    { name: 'access times', list: () => rows(access.list).map(r => ({ digest: r.digest as Digest, what: 'access time' })), drop: (d) => Number(access.drop.run(d).changes) }
  ]
}
