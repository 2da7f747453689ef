/**
 * pushImage: a manifest or index from the content store, and everything
 * below it, to a registry. Blobs go first, then child manifests by digest,
 * then the root under the tag (or its digest), so the registry can check
 * every reference as it arrives.
 */
import type { Digest } from '../content/digest.ts'
import type { BlobReader } from '../content/index.ts'
import { MAX_MANIFEST_SIZE } from '../oci/constants.ts'
import { parseManifestBytes } from '../oci/index.ts'
import { PULL_CONCURRENCY } from './constants.ts'
import type { PushOptions, RegistryClient } from './index.ts'

async function pushNode (client: RegistryClient, repository: string, store: BlobReader, digest: Digest, mediaType: string | undefined, reference: string, options: PushOptions, depth: number): Promise<void> {
  const bytes = await store.readBytes(digest, MAX_MANIFEST_SIZE)
  const parsed = parseManifestBytes(bytes, mediaType)
  if (parsed.kind === 'index') {
    if (depth > 3) throw new Error(`index nesting deeper than 3 at ${digest}`)
    for (const child of parsed.value.manifests) {
      await pushNode(client, repository, store, child.digest, child.mediaType, child.digest, options, depth + 1)
    }
  } else {
    const blobs = [parsed.value.config, ...parsed.value.layers.filter(l => l.urls === undefined || l.urls.length === 0)]
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < blobs.length) {
        const b = blobs[next++]
        if (b === undefined) break
        await client.pushBlob(repository, b, store, { ...(options.chunkSize === undefined ? {} : { chunkSize: options.chunkSize }), ...(options.mountFrom === undefined ? {} : { mountFrom: options.mountFrom }) })
        options.onBlob?.(b)
      }
    }
    await Promise.all(Array.from({ length: Math.min(PULL_CONCURRENCY, blobs.length) }, worker))
  }
  await client.pushManifest(repository, reference, bytes, parsed.mediaType)
}

export async function pushImageImpl (client: RegistryClient, store: BlobReader, root: { digest: Digest, mediaType?: string }, repository: string, reference: string, options: PushOptions = {}): Promise<Digest> {
  await pushNode(client, repository, store, root.digest, root.mediaType, reference, options, 0)
  return root.digest
}
