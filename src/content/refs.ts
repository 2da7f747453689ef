/**
 * Refs: human names for content. A ref is `REPO:TAG` (e.g.
 * `localhost/kiln-bench/busybox:base`) pointing at a descriptor of a manifest
 * or index in the content store. Refs are GC roots: a blob reachable from a
 * ref is never collected.
 *
 * The gateway reads a ref as repository `REPO` and tag `TAG`.
 */
import type { KilnDb } from '../db/index.ts'
import type { Digest } from './digest.ts'
import { NotFoundError } from './errors.ts'

export interface RefTarget {
  digest: Digest
  mediaType: string
  size: number
}

export interface Ref extends RefTarget {
  repository: string
  tag: string
  updatedAt: number
}

export interface RefStore {
  /** Points repository:tag at target, replacing what it pointed at. */
  set: (repository: string, tag: string, target: RefTarget) => void
  /** Throws NotFoundError when absent. */
  get: (repository: string, tag: string) => Ref
  find: (repository: string, tag: string) => Ref | undefined
  /** Returns whether it existed. */
  delete: (repository: string, tag: string) => boolean
  /** Refs, sorted by repository then tag; filtered to one repository when given. */
  list: (repository?: string) => Ref[]
  /** Repositories that have at least one tag, sorted. */
  repositories: () => string[]
  /** Refs pointing at this digest. */
  byDigest: (digest: Digest) => Ref[]
}

const MIGRATIONS = [
  `CREATE TABLE refs (
     repository TEXT NOT NULL,
     tag TEXT NOT NULL,
     digest TEXT NOT NULL,
     media_type TEXT NOT NULL,
     size INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     PRIMARY KEY (repository, tag)
   );
   CREATE INDEX refs_digest ON refs (digest);`
]

interface RefRow { repository: string, tag: string, digest: string, media_type: string, size: number, updated_at: number }

function toRef (row: RefRow): Ref {
  return { repository: row.repository, tag: row.tag, digest: row.digest as Digest, mediaType: row.media_type, size: row.size, updatedAt: row.updated_at }
}

export function createRefStore (db: KilnDb): RefStore {
  db.migrate('refs', MIGRATIONS)
  const q = {
    set: db.sql.prepare(`INSERT INTO refs (repository, tag, digest, media_type, size, updated_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT(repository, tag) DO UPDATE SET digest = excluded.digest, media_type = excluded.media_type, size = excluded.size, updated_at = excluded.updated_at`),
    get: db.sql.prepare('SELECT * FROM refs WHERE repository = ? AND tag = ?'),
    del: db.sql.prepare('DELETE FROM refs WHERE repository = ? AND tag = ?'),
    all: db.sql.prepare('SELECT * FROM refs ORDER BY repository, tag'),
    repo: db.sql.prepare('SELECT * FROM refs WHERE repository = ? ORDER BY tag'),
    repos: db.sql.prepare('SELECT DISTINCT repository FROM refs ORDER BY repository'),
    digest: db.sql.prepare('SELECT * FROM refs WHERE digest = ? ORDER BY repository, tag')
  }
  const find = (repository: string, tag: string): Ref | undefined => {
    const row = q.get.get(repository, tag) as RefRow | undefined
    return row === undefined ? undefined : toRef(row)
  }
  return {
    set: (repository, tag, t) => { q.set.run(repository, tag, t.digest, t.mediaType, t.size, Date.now()) },
    find,
    get: (repository, tag) => {
      const ref = find(repository, tag)
      if (ref === undefined) throw new NotFoundError(`no image named ${repository}:${tag}`)
      return ref
    },
    delete: (repository, tag) => Number(q.del.run(repository, tag).changes) > 0,
    list: (repository) => ((repository === undefined ? q.all.all() : q.repo.all(repository)) as unknown as RefRow[]).map(toRef),
    repositories: () => (q.repos.all() as Array<{ repository: string }>).map(r => r.repository),
    byDigest: (digest) => (q.digest.all(digest) as unknown as RefRow[]).map(toRef)
  }
}
