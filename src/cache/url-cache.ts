/**
 * What the builder last downloaded for an `ADD <url>`: the URL's
 * *validator* (its ETag and Last-Modified, as the server sent them) and the
 * digest of the bytes, in the store's database. The next build of the same
 * URL sends the validator back (`If-None-Match`, `If-Modified-Since`); a
 * 304 means the blob named here is still the URL's content, so the step
 * key, which hashes the validator and the digest, is the same and the
 * step is a cache hit without a download (docs/building.md, "ADD").
 */
import { z } from 'zod'
import type { Digest } from '../content/index.ts'
import type { KilnDb } from '../db/index.ts'
import { DigestSchema } from '../oci/index.ts'

export interface UrlRecord {
  etag?: string
  lastModified?: string
  digest: Digest
  size: number
}

/** `put` replaces the URL's record; `get` is undefined for a URL never downloaded. */
export interface UrlCache {
  get: (url: string) => UrlRecord | undefined
  put: (url: string, record: UrlRecord) => void
}

const MIGRATIONS = [
  `CREATE TABLE add_url_cache (
     url TEXT PRIMARY KEY,
     etag TEXT,
     last_modified TEXT,
     digest TEXT NOT NULL,
     size INTEGER NOT NULL,
     fetched_at INTEGER NOT NULL
   );`
]

const RowSchema = z.object({ etag: z.string().nullable(), last_modified: z.string().nullable(), digest: DigestSchema, size: z.number().int().nonnegative() })

export function createUrlCache (db: KilnDb): UrlCache {
  db.migrate('add-url-cache', MIGRATIONS)
  const get = db.sql.prepare('SELECT etag, last_modified, digest, size FROM add_url_cache WHERE url = ?')
  const put = db.sql.prepare('INSERT OR REPLACE INTO add_url_cache (url, etag, last_modified, digest, size, fetched_at) VALUES (?, ?, ?, ?, ?, ?)')
  return {
    get: (url) => {
      const row = get.get(url)
      if (row === undefined) return undefined
      const r = RowSchema.parse(row)
      return { digest: r.digest, size: r.size, ...(r.etag === null ? {} : { etag: r.etag }), ...(r.last_modified === null ? {} : { lastModified: r.last_modified }) }
    },
    put: (url, r) => { put.run(url, r.etag ?? null, r.lastModified ?? null, r.digest, r.size, Date.now()) }
  }
}
