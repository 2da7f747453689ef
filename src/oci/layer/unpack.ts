/**
 * Unpacking an image from the store into a directory: the index entry for
 * the wanted platform, then each layer in order with extractLayer, each
 * layer's diffID checked against the config (the digest chain from the
 * manifest down to the files).
 */
import type { BlobReader } from '../../content/index.ts'
import { MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE } from '../constants.ts'
import { DiffIdMismatchError, ManifestInvalidError } from '../errors.ts'
import { parseDescribed } from '../graph.ts'
import { hostPlatform, selectManifest } from '../platform.ts'
import type { Platform } from '../platform.ts'
import { parseConfigBytes } from '../schemas.ts'
import type { Descriptor, ImageConfig, ImageManifest } from '../schemas.ts'
import { extractLayer } from './extract.ts'
import type { ExtractOptions } from './extract.ts'
import type { TarHeader } from './tar-header.ts'

export interface UnpackOptions extends ExtractOptions {
  /** Platform to pick from an index; default the host's. */
  platform?: Platform
  /** Asked once per layer for a header reader for it (ExtractOptions.onHeader). */
  onLayerHeader?: (layer: Descriptor) => ((header: TarHeader) => void) | undefined
}

export interface ResolvedImage {
  /** The single-platform manifest the descriptor led to. */
  descriptor: Descriptor
  manifest: ImageManifest
  config: ImageConfig
}

const MAX_INDEX_DEPTH = 4

/** Follows indexes down to the manifest for a platform and reads its config. */
export async function resolveImage (store: BlobReader, descriptor: Descriptor, platform: Platform = hostPlatform()): Promise<ResolvedImage> {
  let d = descriptor
  for (let depth = 0; depth <= MAX_INDEX_DEPTH; depth++) {
    const parsed = parseDescribed(d, await store.readBytes(d.digest, MAX_MANIFEST_SIZE))
    if (parsed.kind === 'index') {
      d = selectManifest(parsed.value, platform)
      continue
    }
    const configBytes = await store.readBytes(parsed.value.config.digest, MAX_CONFIG_SIZE)
    const config = parseConfigBytes(configBytes)
    if (config.rootfs.diff_ids.length !== parsed.value.layers.length) {
      throw new ManifestInvalidError(`${d.digest} has ${parsed.value.layers.length} layers but its config lists ${config.rootfs.diff_ids.length} diff_ids`)
    }
    return { descriptor: d, manifest: parsed.value, config }
  }
  throw new ManifestInvalidError(`${descriptor.digest}: indexes nested deeper than ${MAX_INDEX_DEPTH}`)
}

/**
 * Unpacks an image (manifest, or index resolved for options.platform) into
 * dir, layer over layer. dir should be empty; on failure it holds a partial
 * tree and should be removed.
 */
export async function unpackImage (store: BlobReader, descriptor: Descriptor, dir: string, options: UnpackOptions = {}): Promise<ResolvedImage> {
  const image = await resolveImage(store, descriptor, options.platform)
  for (const [i, layer] of image.manifest.layers.entries()) {
    const onHeader = options.onLayerHeader?.(layer)
    const result = await extractLayer(store.read(layer.digest, { signal: options.signal }), dir, onHeader === undefined ? options : { ...options, onHeader })
    const expected = image.config.rootfs.diff_ids[i]
    if (result.diffId !== expected) throw new DiffIdMismatchError(layer.digest, expected ?? '(none)', result.diffId)
  }
  return image
}
