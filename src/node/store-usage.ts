/**
 * What the store holds, as `kiln store df` and the status page report it:
 * blobs and bytes, the build cache beside the store, the quota, what pins
 * and running builds or transfers hold, and the filesystem's free space.
 * Walks the whole store: callers that ask often cache it.
 */
import { statfs } from 'node:fs/promises'
import { join } from 'node:path'
import type { BuildCacheUsage } from '../builder/snapshots.ts'
import type { Digest, LocalStore } from '../content/index.ts'

export interface StoreUsage {
  dataDir: string
  blobs: number
  /** Bytes of blobs. */
  bytes: number
  /** Step snapshots and unpacked bases beside the store, which the quota bounds too. */
  buildCache: BuildCacheUsage
  quota: number | null
  pinnedBytes: number
  leasedBytes: number
  pins: number
  filesystem: { sizeBytes: number, freeBytes: number, freeInodes: number }
}

export async function storeUsage (store: LocalStore, quota: number | undefined): Promise<StoreUsage> {
  const [{ blobChildren }, { untracked }, { createLeases, markReachable }, { createPins }, { createBuildCache }] = await Promise.all([
    import('../oci/index.ts'), import('../content/quota.ts'), import('../content/index.ts'), import('../content/pins.ts'), import('../builder/snapshots.ts')
  ])
  // Read without counting as use: measuring must not change what the quota evicts first.
  const children = blobChildren(untracked(store.content))
  const closure = async (from: Iterable<Digest>): Promise<Set<Digest>> => {
    const seen = new Set<Digest>()
    await markReachable(from, seen, store.content, children)
    return seen
  }
  const pins = createPins(store.db, store.refs)
  const pinned = await closure(pins.roots())
  const leased = await closure(createLeases(store.db).held())
  let blobs = 0; let bytes = 0; let pinnedBytes = 0; let leasedBytes = 0
  for await (const b of store.content.walk()) {
    blobs++
    bytes += b.size
    if (pinned.has(b.digest)) pinnedBytes += b.size
    if (leased.has(b.digest)) leasedBytes += b.size
  }
  const fs = await statfs(store.root)
  const buildCache = createBuildCache({ workDir: join(store.root, 'build'), db: store.db, store: store.content })
  return {
    dataDir: store.root,
    blobs,
    bytes,
    buildCache: await buildCache.usage(),
    quota: quota ?? null,
    pinnedBytes,
    leasedBytes,
    pins: pins.list().length,
    filesystem: { sizeBytes: fs.blocks * fs.bsize, freeBytes: fs.bavail * fs.bsize, freeInodes: fs.ffree }
  }
}
