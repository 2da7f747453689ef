/**
 * Following an image graph: a manifest or index fetched like any blob, then
 * its children (config, layers, per-platform manifests), depth first.
 * Manifests are parsed with src/oci's schemas.
 */
import { parseManifestBytes } from '../oci/schemas.ts'
import type { ContentStore, Digest } from '../content/index.ts'
import type { KilnNode } from '../p2p/index.ts'
import { MAX_MANIFEST_BYTES } from './constants.ts'
import { fetchBlob } from './fetcher.ts'
import type { FetchBlobOptions, FetchResult } from './fetcher.ts'

export interface PullResult {
  root: Digest
  /** Every blob of the graph, root first. */
  blobs: FetchResult[]
}

export interface PullOptions extends Omit<FetchBlobOptions, 'size'> {
  /** Size of the root, when known. */
  size?: number
  /** Children fetched at once; default 3. */
  concurrency?: number
  /** Called with each digest before it is fetched (Transfer takes a lease on it, so quota and GC keep the graph whole while it is written). */
  hold?: (digest: Digest) => void
}

/** Fetches a manifest or index and everything it references. A blob that is not a manifest ends the walk there. */
export async function pullGraph (node: KilnNode, store: ContentStore, root: Digest, options: PullOptions = {}): Promise<PullResult> {
  const blobs: FetchResult[] = []
  const seen = new Set<Digest>()
  const banned = options.banned ?? new Set<string>()
  const visit = async (digest: Digest, size: number | undefined, mediaType: string | undefined, followChildren: boolean): Promise<void> => {
    if (seen.has(digest)) return
    seen.add(digest)
    options.hold?.(digest)
    blobs.push(await fetchBlob(node, store, digest, { ...options, size, banned }))
    if (!followChildren) return
    const info = await store.info(digest)
    if (info.size > MAX_MANIFEST_BYTES) return
    let parsed
    try {
      parsed = parseManifestBytes(await store.readBytes(digest, MAX_MANIFEST_BYTES), mediaType)
    } catch {
      return // not a manifest: a plain blob
    }
    const children = parsed.kind === 'index'
      ? parsed.value.manifests.map(d => ({ d, follow: true }))
      : [{ d: parsed.value.config, follow: false }, ...parsed.value.layers.map(d => ({ d, follow: false }))]
    const concurrency = options.concurrency ?? 3
    for (let i = 0; i < children.length; i += concurrency) {
      await Promise.all(children.slice(i, i + concurrency).map(async ({ d, follow }) => {
        await visit(d.digest, d.size, d.mediaType, follow)
      }))
    }
  }
  await visit(root, options.size, undefined, true)
  return { root, blobs }
}
