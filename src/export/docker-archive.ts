/**
 * type=docker-archive: the `docker save` format that `docker load`,
 * `podman load` and `skopeo ... docker-archive:FILE` read:
 *
 *   manifest.json              [{ "Config": "blobs/sha256/<config hex>",
 *                                 "RepoTags": ["repo:tag"],
 *                                 "Layers": ["blobs/sha256/<diffID hex>", ...] }]
 *   blobs/sha256/<config hex>  the image config, as stored
 *   blobs/sha256/<diffID hex>  each layer, uncompressed (as docker 25 names them)
 *
 * One platform only: from an index, `platform=` (default: this host's)
 * selects the manifest. Layers are decompressed twice (once to learn the tar
 * size the header needs and to check it against the config's diff_ids, once
 * to write), so nothing is staged on disk.
 */
import { createHash } from 'node:crypto'
import { digestHex } from '../content/index.ts'
import type { Digest } from '../content/index.ts'
import {
  MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, decompress, encodeJson, hostPlatform, layerCompression,
  parseConfigBytes, parseDescribed, parsePlatform, selectManifest
} from '../oci/index.ts'
import type { Descriptor, ImageManifest } from '../oci/index.ts'
import { MAX_INDEX_DEPTH } from './constants.ts'
import { ExportUnsupportedError } from './errors.ts'
import type { ExportImage, ExportOptions, ExportResult } from './index.ts'
import { splitRepoTag, targetNames } from './names.ts'
import type { DockerArchiveSpec } from './output-spec.ts'
import { writeTarFile } from './tar-file.ts'
import type { TarFileEntry } from './tar-file.ts'

/** The single-platform manifest an image resolves to, following indexes. */
async function resolveManifest (image: ExportImage, platformText: string | undefined): Promise<{ descriptor: Descriptor, manifest: ImageManifest }> {
  const wanted = platformText === undefined ? hostPlatform() : parsePlatform(platformText)
  let d = image.root
  for (let depth = 0; depth <= MAX_INDEX_DEPTH; depth++) {
    const parsed = parseDescribed(d, await image.store.readBytes(d.digest, MAX_MANIFEST_SIZE))
    if (parsed.kind === 'manifest') return { descriptor: d, manifest: parsed.value }
    d = selectManifest(parsed.value, wanted)
  }
  throw new ExportUnsupportedError(`${image.root.digest}: indexes nested deeper than ${MAX_INDEX_DEPTH}`)
}

/** Size and sha256 of a layer's uncompressed tar. */
async function measureTar (image: ExportImage, layer: Descriptor, signal: AbortSignal | undefined): Promise<{ size: number, diffId: Digest }> {
  const hash = createHash('sha256')
  let size = 0
  for await (const chunk of uncompressed(image, layer, signal)) {
    hash.update(chunk)
    size += chunk.byteLength
  }
  return { size, diffId: `sha256:${hash.digest('hex')}` }
}

function uncompressed (image: ExportImage, layer: Descriptor, signal: AbortSignal | undefined): AsyncIterable<Uint8Array> {
  const compression = layerCompression(layer.mediaType)
  if (compression === undefined) throw new ExportUnsupportedError(`layer ${layer.digest} has media type ${layer.mediaType}, which docker-archive cannot hold`)
  return decompress(image.store.read(layer.digest, signal === undefined ? {} : { signal }), compression)
}

export async function exportDockerArchive (image: ExportImage, spec: DockerArchiveSpec, options: ExportOptions): Promise<ExportResult> {
  const { manifest } = await resolveManifest(image, spec.platform)
  const configBytes = await image.store.readBytes(manifest.config.digest, MAX_CONFIG_SIZE)
  const config = parseConfigBytes(configBytes)
  const diffIds = config.rootfs.diff_ids
  const layers = manifest.layers
  if (diffIds.length !== layers.length) {
    throw new ExportUnsupportedError(`${manifest.config.digest}: the config lists ${diffIds.length} diff_ids for ${layers.length} layers`)
  }
  const sizes: number[] = []
  for (const [i, layer] of layers.entries()) {
    if (layer.urls !== undefined && !(await image.store.has(layer.digest))) throw new ExportUnsupportedError(`foreign layer ${layer.digest} is not in the store`)
    const m = await measureTar(image, layer, options.signal)
    if (m.diffId !== diffIds[i]) throw new ExportUnsupportedError(`layer ${layer.digest} decompresses to ${m.diffId}, the config says ${String(diffIds[i])}`)
    sizes.push(m.size)
  }
  const repoTags = targetNames(spec.names, options).map(n => { const { repository, tag } = splitRepoTag(n); return `${repository}:${tag}` })
  const configPath = `blobs/sha256/${digestHex(manifest.config.digest)}`
  const layerPaths = diffIds.map(d => `blobs/sha256/${digestHex(d)}`)
  const manifestJson = encodeJson([{ Config: configPath, RepoTags: repoTags, Layers: layerPaths }])

  async function * entries (): AsyncGenerator<TarFileEntry> {
    yield { name: 'blobs/', size: 0 }
    yield { name: 'blobs/sha256/', size: 0 }
    yield { name: configPath, size: configBytes.byteLength, data: configBytes }
    const written = new Set<string>([configPath])
    for (const [i, layer] of layers.entries()) {
      const path = layerPaths[i] as string
      if (written.has(path)) continue // the same layer twice in one image: one file serves both
      written.add(path)
      yield { name: path, size: sizes[i] as number, data: () => uncompressed(image, layer, options.signal) }
      options.onProgress?.({ type: 'docker-archive', event: 'blob', digest: layer.digest, size: layer.size })
    }
    yield { name: 'manifest.json', size: manifestJson.byteLength, data: manifestJson }
  }
  await writeTarFile(spec.dest, entries(), options.signal)
  const first = repoTags[0]
  return { description: `docker-archive:${spec.dest}${first === undefined ? '' : `:${first}`}`, digest: manifest.config.digest }
}

