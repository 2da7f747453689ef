/**
 * Replay caches: remember `(signer, nonce)` of every accepted envelope until
 * it can no longer verify (protocols/envelope.md §5). Bounded in entries;
 * when full they forget expired nonces first, then the oldest-issued ones,
 * and refuse everything issued at or before the newest forgotten nonce.
 */
import type { KilnDb } from '../db/index.ts'
import { DEFAULT_REPLAY_CACHE_ENTRIES } from './constants.ts'

export interface ReplayEntry {
  signer: string
  nonce: string
  issuedAt: number
  /** When the entry may be forgotten: the envelope's `expiresAt` plus the tolerated clock skew. */
  keepUntil: number
}

/**
 * - `fresh`: never seen; now remembered.
 * - `replay`: seen before and still remembered.
 * - `too-old`: issued at or before a nonce the cache had to forget while it was still valid.
 */
export type ReplayVerdict = 'fresh' | 'replay' | 'too-old'

export interface ReplayCache {
  /** Checks the entry and, when `fresh`, remembers it; atomic for a single process (the db variant also across processes). */
  remember: (entry: ReplayEntry, now: number) => ReplayVerdict
  /** Entries currently remembered. */
  size: () => number
}

export interface ReplayCacheInit {
  /** Default 100 000. */
  maxEntries?: number
}

/** A cache in memory; a restart forgets everything, so use the db variant where replays across restarts matter. */
export function createMemoryReplayCache (init: ReplayCacheInit = {}): ReplayCache {
  const max = init.maxEntries ?? DEFAULT_REPLAY_CACHE_ENTRIES
  const seen = new Map<string, { issuedAt: number, keepUntil: number }>()
  let watermark = -1

  const makeRoom = (now: number): void => {
    for (const [k, v] of seen) if (v.keepUntil <= now) seen.delete(k)
    if (seen.size < max) return
    // Forget the oldest tenth at once, so that the sort is rare.
    const byAge = [...seen].sort((a, b) => a[1].issuedAt - b[1].issuedAt)
    const drop = byAge.slice(0, Math.max(1, Math.ceil(max / 10)))
    for (const [k, v] of drop) {
      seen.delete(k)
      watermark = Math.max(watermark, v.issuedAt)
    }
  }

  return {
    remember (entry, now) {
      const key = `${entry.signer}/${entry.nonce}`
      const prior = seen.get(key)
      if (prior !== undefined && prior.keepUntil > now) return 'replay'
      if (entry.issuedAt <= watermark) return 'too-old'
      if (seen.size >= max) makeRoom(now)
      seen.set(key, { issuedAt: entry.issuedAt, keepUntil: entry.keepUntil })
      return 'fresh'
    },
    size: () => seen.size
  }
}

const MIGRATIONS = [
  `CREATE TABLE trust_nonces (
     signer TEXT NOT NULL, nonce TEXT NOT NULL,
     issued_at INTEGER NOT NULL, keep_until INTEGER NOT NULL,
     PRIMARY KEY (signer, nonce)) WITHOUT ROWID;
   CREATE INDEX trust_nonces_keep ON trust_nonces (keep_until);
   CREATE INDEX trust_nonces_issued ON trust_nonces (issued_at);
   CREATE TABLE trust_replay_meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);`
]

/** A cache in the node's sqlite db: survives restarts and is shared by processes using the same data dir. */
export function createDbReplayCache (db: KilnDb, init: ReplayCacheInit = {}): ReplayCache {
  const max = init.maxEntries ?? DEFAULT_REPLAY_CACHE_ENTRIES
  db.migrate('trust-replay', MIGRATIONS)
  const q = {
    get: db.sql.prepare('SELECT keep_until AS keepUntil FROM trust_nonces WHERE signer = ? AND nonce = ?'),
    mark: db.sql.prepare("SELECT v FROM trust_replay_meta WHERE k = 'watermark'"),
    setMark: db.sql.prepare("INSERT INTO trust_replay_meta (k, v) VALUES ('watermark', ?) ON CONFLICT(k) DO UPDATE SET v = max(v, excluded.v)"),
    purge: db.sql.prepare('DELETE FROM trust_nonces WHERE keep_until <= ?'),
    count: db.sql.prepare('SELECT count(*) AS n FROM trust_nonces'),
    oldest: db.sql.prepare('SELECT max(issued_at) AS m FROM (SELECT issued_at FROM trust_nonces ORDER BY issued_at LIMIT ?)'),
    dropOldest: db.sql.prepare('DELETE FROM trust_nonces WHERE issued_at <= ?'),
    put: db.sql.prepare('INSERT OR REPLACE INTO trust_nonces (signer, nonce, issued_at, keep_until) VALUES (?, ?, ?, ?)')
  }
  const count = (): number => Number((q.count.get() as { n: number }).n)

  return {
    remember (entry, now) {
      return db.transaction(() => {
        const prior = q.get.get(entry.signer, entry.nonce) as { keepUntil: number } | undefined
        if (prior !== undefined && prior.keepUntil > now) return 'replay'
        const mark = q.mark.get() as { v: number } | undefined
        if (mark !== undefined && entry.issuedAt <= mark.v) return 'too-old'
        q.purge.run(now)
        if (count() >= max) {
          const m = (q.oldest.get(Math.max(1, Math.ceil(max / 10))) as { m: number }).m
          q.dropOldest.run(m)
          q.setMark.run(m)
          if (entry.issuedAt <= m) return 'too-old'
        }
        q.put.run(entry.signer, entry.nonce, entry.issuedAt, entry.keepUntil)
        return 'fresh'
      })
    },
    size: count
  }
}
