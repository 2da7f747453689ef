/**
 * Pins: content an operator asked to keep. A pin names a digest
 * (`sha256:...`) or an image name (`REPO:TAG`). Pinned content is a root for
 * quota eviction and GC: the pinned blob and everything reachable from it
 * (manifests, configs, layers) is never evicted or collected.
 *
 * A pinned name follows its ref: when the tag moves, the new image is the one
 * kept. A pin on a name whose ref is later deleted keeps nothing until the
 * name is set again.
 */
import { z } from 'zod'
import type { KilnDb } from '../db/index.ts'
import { isDigest, parseDigest } from './digest.ts'
import type { Digest } from './digest.ts'
import { InvalidPinTargetError, NotFoundError } from './errors.ts'
import type { RefStore } from './refs.ts'

export { InvalidPinTargetError }

export interface Pin {
  /** A digest, or `REPO:TAG`. */
  target: string
  kind: 'digest' | 'ref'
  createdAt: number
}

export interface Pins {
  /**
   * Pins a digest or `REPO:TAG`. A digest need not be in the store yet (pin
   * what is about to be pulled); a name must exist (NotFoundError otherwise).
   * Pinning twice is a no-op. Returns the normalised pin.
   */
  pin: (target: string) => Pin
  /** Returns whether the pin existed. */
  unpin: (target: string) => boolean
  /** Every pin, oldest first. */
  list: () => Pin[]
  /** The digests pins keep: pinned digests and the current targets of pinned names. */
  roots: () => Digest[]
}

const MIGRATIONS = [
  `CREATE TABLE pins (target TEXT PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('digest', 'ref')), created_at INTEGER NOT NULL);`
]

const PinRow = z.object({ target: z.string(), kind: z.enum(['digest', 'ref']), created_at: z.number().int() })

/** Splits `REPO:TAG` at the tag's colon (the last one after the last slash, so `host:5000/repo:tag` works). */
export function splitRefName (name: string): { repository: string, tag: string } | undefined {
  const slash = name.lastIndexOf('/')
  const colon = name.lastIndexOf(':')
  if (colon <= slash || colon === name.length - 1 || colon === 0) return undefined
  return { repository: name.slice(0, colon), tag: name.slice(colon + 1) }
}

function normalise (target: string): { target: string, kind: Pin['kind'] } {
  if (target.startsWith('sha256:')) return { target: parseDigest(target), kind: 'digest' }
  if (splitRefName(target) === undefined) throw new InvalidPinTargetError(`cannot pin ${JSON.stringify(target)}: give a digest (sha256:...) or an image name REPO:TAG`)
  return { target, kind: 'ref' }
}

export function createPins (db: KilnDb, refs: RefStore): Pins {
  db.migrate('pins', MIGRATIONS)
  const q = {
    add: db.sql.prepare('INSERT OR IGNORE INTO pins (target, kind, created_at) VALUES (?, ?, ?)'),
    get: db.sql.prepare('SELECT * FROM pins WHERE target = ?'),
    del: db.sql.prepare('DELETE FROM pins WHERE target = ?'),
    all: db.sql.prepare('SELECT * FROM pins ORDER BY created_at, target')
  }
  const toPin = (row: unknown): Pin => {
    const r = PinRow.parse(row)
    return { target: r.target, kind: r.kind, createdAt: r.created_at }
  }
  const list = (): Pin[] => q.all.all().map(toPin)
  return {
    pin: (raw) => {
      const { target, kind } = normalise(raw)
      if (kind === 'ref') {
        const name = splitRefName(target) as { repository: string, tag: string }
        if (refs.find(name.repository, name.tag) === undefined) throw new NotFoundError(`no image named ${target} to pin`)
      }
      q.add.run(target, kind, Date.now())
      return toPin(q.get.get(target))
    },
    unpin: (raw) => Number(q.del.run(normalise(raw).target).changes) > 0,
    list,
    roots: () => {
      const out = new Set<Digest>()
      for (const p of list()) {
        if (p.kind === 'digest') { if (isDigest(p.target)) out.add(p.target); continue }
        const name = splitRefName(p.target)
        const ref = name === undefined ? undefined : refs.find(name.repository, name.tag)
        if (ref !== undefined) out.add(ref.digest)
      }
      return [...out]
    }
  }
}
