/**
 * What each repository holds, as the gateway sees it, kept in the store's
 * database (tables owned by the `gateway` module):
 * - blob membership: a repository "has" a blob when it was pushed or mounted
 *   there, or is referenced by one of its manifests. A blob present in the
 *   store but not in the repository is BLOB_UNKNOWN there, as the spec wants.
 * - manifests: every manifest or index pushed to (or tagged in) a repository,
 *   with the fields the referrers API answers from (artifact type, subject,
 *   annotations): the subject -> referrers index.
 */
import type { KilnDb } from '../db/index.ts'
import type { Digest } from '../content/digest.ts'
import type { ReferenceTable } from '../content/index.ts'

export interface ManifestRecord {
  repository: string
  digest: Digest
  mediaType: string
  size: number
  artifactType?: string
  subject?: Digest
  annotations?: Record<string, string>
}

export interface RepoIndex {
  hasBlob: (repository: string, digest: Digest) => boolean
  addBlobs: (repository: string, digests: Iterable<Digest>) => void
  /** Returns whether the repository had the blob. */
  removeBlob: (repository: string, digest: Digest) => boolean
  getManifest: (repository: string, digest: Digest) => ManifestRecord | undefined
  putManifest: (record: ManifestRecord) => void
  /** Returns whether the repository had the manifest. */
  removeManifest: (repository: string, digest: Digest) => boolean
  /** Manifests in a repository whose subject is `subject`, oldest first. */
  referrers: (repository: string, subject: Digest) => ManifestRecord[]
  /** Repositories holding at least one manifest or blob, sorted. */
  repositories: () => string[]
  hasRepository: (repository: string) => boolean
  /** Every digest some repository holds: GC roots, so that pushed-by-digest manifests and referrers survive `kiln gc`. */
  digests: () => Digest[]
}

const MIGRATIONS = [
  `CREATE TABLE gateway_blobs (
     repository TEXT NOT NULL,
     digest TEXT NOT NULL,
     PRIMARY KEY (repository, digest)
   );
   CREATE TABLE gateway_manifests (
     repository TEXT NOT NULL,
     digest TEXT NOT NULL,
     media_type TEXT NOT NULL,
     size INTEGER NOT NULL,
     artifact_type TEXT,
     subject TEXT,
     annotations TEXT,
     created_at INTEGER NOT NULL,
     PRIMARY KEY (repository, digest)
   );
   CREATE INDEX gateway_manifests_subject ON gateway_manifests (repository, subject);`
]

interface ManifestRow {
  repository: string
  digest: string
  media_type: string
  size: number
  artifact_type: string | null
  subject: string | null
  annotations: string | null
}

function toRecord (row: ManifestRow): ManifestRecord {
  const annotations = row.annotations === null ? undefined : JSON.parse(row.annotations) as Record<string, string>
  return {
    repository: row.repository,
    digest: row.digest as Digest,
    mediaType: row.media_type,
    size: row.size,
    ...(row.artifact_type === null ? {} : { artifactType: row.artifact_type }),
    ...(row.subject === null ? {} : { subject: row.subject as Digest }),
    ...(annotations === undefined ? {} : { annotations })
  }
}

export function createRepoIndex (db: KilnDb): RepoIndex {
  db.migrate('gateway', MIGRATIONS)
  const q = {
    hasBlob: db.sql.prepare('SELECT 1 FROM gateway_blobs WHERE repository = ? AND digest = ?'),
    addBlob: db.sql.prepare('INSERT OR IGNORE INTO gateway_blobs (repository, digest) VALUES (?, ?)'),
    delBlob: db.sql.prepare('DELETE FROM gateway_blobs WHERE repository = ? AND digest = ?'),
    getManifest: db.sql.prepare('SELECT * FROM gateway_manifests WHERE repository = ? AND digest = ?'),
    putManifest: db.sql.prepare(`INSERT INTO gateway_manifests (repository, digest, media_type, size, artifact_type, subject, annotations, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(repository, digest) DO UPDATE SET media_type = excluded.media_type,
      size = excluded.size, artifact_type = excluded.artifact_type, subject = excluded.subject, annotations = excluded.annotations`),
    delManifest: db.sql.prepare('DELETE FROM gateway_manifests WHERE repository = ? AND digest = ?'),
    referrers: db.sql.prepare('SELECT * FROM gateway_manifests WHERE repository = ? AND subject = ? ORDER BY created_at, digest'),
    repos: db.sql.prepare('SELECT repository FROM gateway_manifests UNION SELECT repository FROM gateway_blobs ORDER BY repository'),
    digests: db.sql.prepare('SELECT digest FROM gateway_manifests UNION SELECT digest FROM gateway_blobs'),
    hasRepo: db.sql.prepare('SELECT 1 FROM gateway_manifests WHERE repository = ? UNION ALL SELECT 1 FROM gateway_blobs WHERE repository = ? LIMIT 1')
  }
  return {
    hasBlob: (repository, digest) => q.hasBlob.get(repository, digest) !== undefined,
    addBlobs: (repository, digests) => {
      db.transaction(() => { for (const d of digests) q.addBlob.run(repository, d) })
    },
    removeBlob: (repository, digest) => Number(q.delBlob.run(repository, digest).changes) > 0,
    getManifest: (repository, digest) => {
      const row = q.getManifest.get(repository, digest) as ManifestRow | undefined
      return row === undefined ? undefined : toRecord(row)
    },
    putManifest: (r) => {
      q.putManifest.run(r.repository, r.digest, r.mediaType, r.size, r.artifactType ?? null, r.subject ?? null,
        r.annotations === undefined ? null : JSON.stringify(r.annotations), Date.now())
    },
    removeManifest: (repository, digest) => Number(q.delManifest.run(repository, digest).changes) > 0,
    referrers: (repository, subject) => (q.referrers.all(repository, subject) as unknown as ManifestRow[]).map(toRecord),
    repositories: () => (q.repos.all() as Array<{ repository: string }>).map(r => r.repository),
    hasRepository: (repository) => q.hasRepo.get(repository, repository) !== undefined,
    digests: () => (q.digests.all() as Array<{ digest: string }>).map(r => r.digest as Digest)
  }
}

/** The gateway's repository rows as `kiln store verify` checks them: each names a blob (src/content/verify.ts). */
export function repoIndexReferences (db: KilnDb): ReferenceTable {
  createRepoIndex(db)
  const list = db.sql.prepare("SELECT repository, digest, 'manifest' AS kind FROM gateway_manifests UNION ALL SELECT repository, digest, 'blob' AS kind FROM gateway_blobs")
  const dropManifests = db.sql.prepare('DELETE FROM gateway_manifests WHERE digest = ?')
  const dropBlobs = db.sql.prepare('DELETE FROM gateway_blobs WHERE digest = ?')
  return {
    name: 'gateway repositories',
    list: () => (list.all() as Array<{ repository: string, digest: string, kind: string }>).map(r => ({ digest: r.digest as Digest, what: `${r.kind} in ${r.repository}` })),
    drop: (digest) => db.transaction(() => Number(dropManifests.run(digest).changes) + Number(dropBlobs.run(digest).changes))
  }
}
