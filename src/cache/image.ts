/**
 * Build cache export and import (protocols/exporter.md §7). The builder's
 * step cache (./step-cache.ts) is packed with the layers it
 * names as an OCI artifact, which any exporter can write (layout, archive, registry, static site, s3, exec).
 * Importing it into another store adds the records and blobs, and, given
 * the builder's snapshot dir, the step snapshots, so that another agent's
 * build of the same steps runs nothing.
 *
 * Modes, as BuildKit's: `max` packs every record of the store; `min` only
 * those whose layer is in a given image.
 */
import {
  BUILD_CACHE_MAX_CONFIG_BYTES, BUILD_CACHE_MEDIA_TYPE, BUILD_CACHE_VERSION, BuildCacheConfigSchema
} from '../../protocols/exporter.ts'
import type { BuildCacheConfig, BuildCacheRecord } from '../../protocols/exporter.ts'
import type { BlobReader, ContentStore, Digest } from '../content/index.ts'
import type { KilnDb } from '../db/index.ts'
import { MAX_MANIFEST_SIZE, OCI_MANIFEST, encodeJson, importImage, parseDescribed, parseDockerName, parseImageRef, walkImage } from '../oci/index.ts'
import type { Descriptor } from '../oci/index.ts'
import { createRegistryClient, pullImage } from '../registry/index.ts'
import type { RegistryClient } from '../registry/index.ts'
import type { DockerName } from '../oci/index.ts'
import { materializeSnapshot } from './snapshot.ts'
import { CacheImageError } from './errors.ts'
import { createStepCache } from './step-cache.ts'

export { BUILD_CACHE_MEDIA_TYPE }
export type { BuildCacheRecord }

/** How a cache image is fetched from a registry (the CLI's credentials and TLS choices); default an anonymous client. */
export interface CacheSourceComponents {
  registry?: (name: DockerName, insecure: boolean) => RegistryClient
}

export interface CacheExportOptions {
  /** Default 'max'. */
  mode?: 'min' | 'max'
  /** For mode 'min': the image whose layers select the records. */
  image?: Descriptor
}

export interface CacheImportOptions {
  /** The builder's snapshot dir (`<data dir>/build/snapshots`); without it only records and blobs are imported. */
  snapshotsDir?: string
  signal?: AbortSignal
}

export interface CacheImportResult {
  /** Records added (keys the store did not have). */
  added: number
  /** Records already present. */
  kept: number
  snapshots: { created: number, present: number, unsupported: number }
}

function readRecords (db: KilnDb): BuildCacheRecord[] {
  return createStepCache(db).list().map(r => ({ key: r.key, layer: r.descriptor, diffId: r.diffId }))
}

/**
 * The step-cache records a cache export or publication carries: every one
 * (`max`) or those whose layer is in `image` (`min`), and only those whose
 * layer blob is still in the store.
 */
export async function selectCacheRecords (db: KilnDb, store: BlobReader, options: CacheExportOptions = {}): Promise<BuildCacheRecord[]> {
  let records = readRecords(db)
  if ((options.mode ?? 'max') === 'min') {
    if (options.image === undefined) throw new CacheImageError('cache mode=min needs the image whose steps to export')
    const layers = new Set<Digest>()
    for await (const w of walkImage(store, options.image)) if (w.role === 'layer') layers.add(w.descriptor.digest)
    records = records.filter(r => layers.has(r.layer.digest))
  }
  const present: BuildCacheRecord[] = []
  for (const r of records) if (await store.has(r.layer.digest)) present.push(r)
  return present
}

/**
 * Packs the store's step cache as a cache artifact in the store and returns
 * its manifest's descriptor, ready for any exporter. Records whose layer is
 * no longer in the store are left out.
 */
export async function createCacheImage (db: KilnDb, store: ContentStore, options: CacheExportOptions = {}): Promise<{ descriptor: Descriptor, records: number }> {
  const mode = options.mode ?? 'max'
  const present = await selectCacheRecords(db, store, options)
  const config: BuildCacheConfig = { version: BUILD_CACHE_VERSION, mode, records: present }
  const configInfo = await store.ingest(encodeJson(config))
  const layers = [...new Map(present.map(r => [r.layer.digest, r.layer])).values()].sort((a, b) => a.digest < b.digest ? -1 : 1)
  const manifest = encodeJson({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: BUILD_CACHE_MEDIA_TYPE,
    config: { mediaType: BUILD_CACHE_MEDIA_TYPE, digest: configInfo.digest, size: configInfo.size },
    layers
  })
  const info = await store.ingest(manifest)
  return { descriptor: { mediaType: OCI_MANIFEST, digest: info.digest, size: info.size, artifactType: BUILD_CACHE_MEDIA_TYPE }, records: present.length }
}

/**
 * Fetches a cache artifact into the store from `oci:DIR[:TAG]`,
 * `oci-archive:FILE[:TAG]` or `docker://HOST/REPO:TAG` (a registry, the
 * gateway, or a static site behind a web server).
 */
export async function fetchCacheImage (store: ContentStore, ref: string, components: CacheSourceComponents = {}): Promise<Descriptor> {
  const parsed = parseImageRef(ref)
  if (parsed.transport === 'oci' || parsed.transport === 'oci-archive') {
    const images = await importImage(store, parsed)
    const first = images[0]
    if (images.length !== 1 || first === undefined) throw new CacheImageError(`${ref} holds ${images.length} images; name the cache one with :TAG`)
    return first.descriptor
  }
  if (parsed.transport === 'docker') {
    const name = parseDockerName(ref.slice('docker://'.length))
    const client = components.registry?.(name, false) ?? createRegistryClient({ registry: name.domain })
    const pulled = await pullImage(client, name.path, name.digest ?? name.tag ?? 'latest', store)
    return { mediaType: pulled.mediaType, digest: pulled.digest, size: pulled.size }
  }
  throw new CacheImageError(`cannot import a build cache from ${ref}; use oci:, oci-archive: or docker://`)
}

/** Adds a cache artifact that is already in the store to its step cache (and the builder's snapshots). */
export async function importCacheImage (db: KilnDb, store: ContentStore, root: Descriptor, options: CacheImportOptions = {}): Promise<CacheImportResult> {
  const parsed = parseDescribed(root, await store.readBytes(root.digest, MAX_MANIFEST_SIZE))
  if (parsed.kind !== 'manifest' || parsed.value.config.mediaType !== BUILD_CACHE_MEDIA_TYPE) {
    throw new CacheImageError(`${root.digest} is not a kiln build cache (${BUILD_CACHE_MEDIA_TYPE})`)
  }
  const configBytes = await store.readBytes(parsed.value.config.digest, BUILD_CACHE_MAX_CONFIG_BYTES)
  let json: unknown
  try { json = JSON.parse(new TextDecoder().decode(configBytes)) } catch { throw new CacheImageError(`${parsed.value.config.digest}: cache config is not JSON`) }
  const r = BuildCacheConfigSchema.safeParse(json)
  if (!r.success) throw new CacheImageError(`${parsed.value.config.digest}: invalid cache config: ${r.error.issues.slice(0, 3).map(i => `${i.path.join('.')}: ${i.message}`).join('; ')}`)
  const listed = new Map(parsed.value.layers.map(l => [l.digest, l]))
  const cache = createStepCache(db)
  const result: CacheImportResult = { added: 0, kept: 0, snapshots: { created: 0, present: 0, unsupported: 0 } }
  for (const rec of r.data.records) {
    options.signal?.throwIfAborted()
    const layer = listed.get(rec.layer.digest)
    if (layer === undefined || layer.size !== rec.layer.size || layer.mediaType !== rec.layer.mediaType) {
      throw new CacheImageError(`cache record ${rec.key} names layer ${rec.layer.digest}, which the artifact does not list as such`)
    }
    if (!await store.has(rec.layer.digest)) throw new CacheImageError(`cache layer ${rec.layer.digest} is not in the store; fetch the artifact first`)
    if (options.snapshotsDir !== undefined) result.snapshots[await materializeSnapshot(store, layer, rec.diffId, options.snapshotsDir)]++
    if (cache.get(rec.key) !== undefined) { result.kept++; continue }
    cache.put(rec.key, { descriptor: rec.layer, diffId: rec.diffId })
    result.added++
  }
  return result
}
