/**
 * pullImage: a manifest or index and everything below it, from a registry
 * into the content store, each blob verified against its descriptor.
 * With a platform, only that platform's image is fetched from an index (the
 * index itself is stored too, so the result keeps its digest).
 */
import type { Digest } from '../content/digest.ts'
import type { ContentStore, Ingester } from '../content/index.ts'
import { parseManifestBytes, selectManifest } from '../oci/index.ts'
import type { Descriptor, Platform } from '../oci/index.ts'
import { PULL_CONCURRENCY } from './constants.ts'
import type { PullOptions, PulledImage, RegistryClient } from './index.ts'

async function inParallel<T> (items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++] as T)
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

interface Walk {
  client: RegistryClient
  repository: string
  store: ContentStore
  platform?: Platform
  onBlob?: PullOptions['onBlob']
  onProgress?: PullOptions['onProgress']
}

async function fetchBlobOnce (w: Walk, d: { digest: Digest, size: number, mediaType: string }): Promise<void> {
  if (await w.store.has(d.digest)) {
    w.onBlob?.(d as Descriptor, 'present')
    return
  }
  const onProgress = w.onProgress
  const into: Ingester = onProgress === undefined
    ? w.store
    : {
        ingest: async (source, expected, options = {}) => await w.store.ingest(source, expected, { ...options, onProgress: n => { onProgress(d as Descriptor, n) } }),
        openPartial: async (digest, size) => await w.store.openPartial(digest, size)
      }
  await w.client.fetchBlob(w.repository, d, into)
  w.onBlob?.(d as Descriptor, 'stored')
}

/** Fetches and stores a manifest or index by digest or tag, then what it references; returns its descriptor. */
async function pullNode (w: Walk, reference: string, depth: number): Promise<{ digest: Digest, mediaType: string, size: number, manifests: Digest[] }> {
  const m = await w.client.getManifest(w.repository, reference)
  const parsed = parseManifestBytes(m.bytes, m.mediaType === '' ? undefined : m.mediaType)
  const manifests: Digest[] = []
  if (parsed.kind === 'index') {
    if (depth > 3) throw new Error(`index nesting deeper than 3 at ${m.digest}`)
    const children = w.platform === undefined ? parsed.value.manifests : [selectManifest(parsed.value, w.platform)]
    for (const child of children) {
      const sub = await pullNode(w, child.digest, depth + 1)
      manifests.push(...sub.manifests)
    }
  } else {
    manifests.push(m.digest)
    const blobs = [parsed.value.config, ...parsed.value.layers.filter(l => l.urls === undefined || l.urls.length === 0)]
    await inParallel(blobs, PULL_CONCURRENCY, b => fetchBlobOnce(w, b))
  }
  await w.store.ingest(m.bytes, { digest: m.digest, size: m.bytes.byteLength })
  return { digest: m.digest, mediaType: parsed.mediaType, size: m.bytes.byteLength, manifests }
}

export async function pullImageImpl (client: RegistryClient, repository: string, reference: string, store: ContentStore, options: PullOptions = {}): Promise<PulledImage> {
  const w: Walk = {
    client, repository, store,
    ...(options.platform === undefined ? {} : { platform: options.platform }),
    ...(options.onBlob === undefined ? {} : { onBlob: options.onBlob }),
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress })
  }
  const root = await pullNode(w, reference, 0)
  return { digest: root.digest, mediaType: root.mediaType, size: root.size, manifests: root.manifests }
}
