/** A summary of a stored image for `image ls` and `image inspect`. */
import type { Digest, LocalStore } from '../content/index.ts'
import type { Descriptor, ImageConfig, ImageManifest } from '../oci/index.ts'

export interface ImageSummary {
  digest: Digest
  mediaType: string
  kind: 'manifest' | 'index'
  /** os/arch[/variant] of each image (one for a manifest). */
  platforms: string[]
  /** Bytes of every blob the image needs (manifests, configs, layers), each counted once. */
  size: number
  /** Whether every blob is present (a pulled index may hold only some platforms). */
  complete: boolean
  manifests: Array<{ digest: Digest, platform: string, config?: ImageConfig, layers: Descriptor[] }>
}

export async function describeImage (store: LocalStore, root: Descriptor): Promise<ImageSummary> {
  const oci = await import('../oci/index.ts')
  const { content } = store
  const parsedRoot = oci.parseDescribed(root, await content.readBytes(root.digest, oci.MAX_MANIFEST_SIZE))
  const seen = new Set<Digest>([root.digest])
  let size = root.size
  let complete = true
  const manifests: ImageSummary['manifests'] = []

  const addBlob = async (d: Descriptor): Promise<void> => {
    if (seen.has(d.digest)) return
    seen.add(d.digest)
    size += d.size
    if (!(await content.has(d.digest))) complete = false
  }
  const visitManifest = async (d: Descriptor, value: ImageManifest, hint?: string): Promise<void> => {
    await addBlob(d)
    for (const l of value.layers) await addBlob(l)
    await addBlob(value.config)
    let config: ImageConfig | undefined
    if (await content.has(value.config.digest)) {
      try { config = oci.parseConfigBytes(await content.readBytes(value.config.digest)) } catch { /* artifacts carry other configs */ }
    }
    const platform = config !== undefined ? [config.os, config.architecture, config.variant].filter(Boolean).join('/') : hint ?? 'unknown'
    manifests.push({ digest: d.digest, platform, layers: value.layers, ...(config !== undefined ? { config } : {}) })
  }

  if (parsedRoot.kind === 'manifest') {
    await visitManifest(root, parsedRoot.value)
  } else {
    for (const d of parsedRoot.value.manifests) {
      const hint = d.platform !== undefined ? [d.platform.os, d.platform.architecture, d.platform.variant].filter(Boolean).join('/') : undefined
      if (!(await content.has(d.digest))) { complete = false; size += d.size; continue }
      const parsed = oci.parseDescribed(d, await content.readBytes(d.digest, oci.MAX_MANIFEST_SIZE))
      if (parsed.kind === 'manifest') await visitManifest(d, parsed.value, hint)
    }
  }
  return {
    digest: root.digest,
    mediaType: root.mediaType,
    kind: parsedRoot.kind,
    platforms: manifests.map(m => m.platform),
    size,
    complete,
    manifests
  }
}
