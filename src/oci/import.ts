/**
 * Importing images into the content store from an OCI layout directory, an
 * oci-archive or a docker-archive.
 *
 * Everything is checked before it counts: manifests, indexes and configs are
 * read from the source, verified against the digest and size that reference
 * them and parsed; every referenced blob must be in the source (or be
 * optional: subjects, foreign layers); layers are streamed straight from the
 * source file into the store, which verifies digest and size while writing.
 * Blobs go in children first, so a manifest is never visible before its
 * layers. If anything fails, the blobs this import added are deleted again.
 */
import { DigestMismatchError, SizeMismatchError, sha256Digest } from '../content/index.ts'
import type { ContentStore, Digest } from '../content/index.ts'
import { readDockerArchive, readOciArchive } from './archive.ts'
import { layoutBlobSource, readLocation } from './blob-source.ts'
import type { BlobLocation, BlobSource } from './blob-source.ts'
import { MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE } from './constants.ts'
import { BlobMissingError, ReferenceInvalidError } from './errors.ts'
import { childrenOf, hasChildren, parseDescribed } from './graph.ts'
import type { Child } from './graph.ts'
import { readOciLayout, selectLayoutEntries } from './layout.ts'
import type { NamedImage } from './layout.ts'
import { isConfig, isForeignLayer } from './media-types.ts'
import type { ImageRef } from './reference.ts'
import { parseConfigBytes } from './schemas.ts'
import type { Descriptor } from './schemas.ts'

export type ImportSource = Extract<ImageRef, { transport: 'oci' | 'oci-archive' | 'docker-archive' }>

export interface ImportOptions {
  signal?: AbortSignal
  /** Called with each blob as it is stored (or found already present). */
  onBlob?: (descriptor: Descriptor, status: 'stored' | 'present') => void
  /** Called as a blob is being stored, with the bytes written so far (not for blobs already present). */
  onProgress?: (descriptor: Descriptor, bytes: number) => void
}

interface PlannedBlob {
  descriptor: Descriptor
  bytes?: Uint8Array
  location?: BlobLocation
}

function describe (d: Descriptor, role: Child['role'] | 'root'): string {
  return `${role === 'root' ? 'root' : role} ${d.mediaType} ${d.digest}`
}

/** Walks the image in the source, verifying small documents, and returns blobs children-first. */
async function plan (source: BlobSource, roots: readonly NamedImage[], signal?: AbortSignal): Promise<PlannedBlob[]> {
  const out: PlannedBlob[] = []
  const seen = new Set<Digest>()
  const visit = async (d: Descriptor, role: Child['role'] | 'root', referrer: string, optional: boolean): Promise<void> => {
    signal?.throwIfAborted()
    if (seen.has(d.digest)) return
    seen.add(d.digest)
    const location = await source.locate(d.digest)
    if (location === undefined) {
      if (optional) return
      throw new BlobMissingError(d.digest, referrer)
    }
    if (location.size !== d.size) throw new SizeMismatchError(d.size, location.size, `blob ${d.digest} referenced by ${referrer}`)
    if (hasChildren(d)) {
      const bytes = await readLocation(location, MAX_MANIFEST_SIZE, `manifest ${d.digest}`)
      const parsed = parseDescribed(d, bytes)
      for (const c of childrenOf(parsed)) {
        await visit(c.descriptor, c.role, describe(d, role), c.role === 'subject' || isForeignLayer(c.descriptor.mediaType))
      }
      out.push({ descriptor: d, bytes })
    } else if (role === 'config') {
      const bytes = await readLocation(location, MAX_CONFIG_SIZE, `config ${d.digest}`)
      const actual = sha256Digest(bytes)
      if (actual !== d.digest) throw new DigestMismatchError(d.digest, actual)
      if (isConfig(d.mediaType)) parseConfigBytes(bytes)
      out.push({ descriptor: d, bytes })
    } else {
      out.push({ descriptor: d, location })
    }
  }
  for (const r of roots) await visit(r.descriptor, 'root', r.refName === undefined ? 'the source index' : `the source entry ${JSON.stringify(r.refName)}`, false)
  return out
}

/**
 * Copies images from any BlobSource into the store. Returns the roots as
 * given. All-or-nothing for the blobs it adds.
 */
export async function importFromSource (store: ContentStore, source: BlobSource, roots: readonly NamedImage[], options: ImportOptions = {}): Promise<NamedImage[]> {
  const blobs = await plan(source, roots, options.signal)
  const added: Digest[] = []
  try {
    for (const b of blobs) {
      options.signal?.throwIfAborted()
      const { digest, size } = b.descriptor
      if (await store.has(digest)) {
        options.onBlob?.(b.descriptor, 'present')
        continue
      }
      const data = b.bytes ?? (b.location as BlobLocation).open()
      const onProgress = options.onProgress
      await store.ingest(data, { digest, size }, { signal: options.signal, ...(onProgress !== undefined ? { onProgress: (n: number) => { onProgress(b.descriptor, n) } } : {}) })
      added.push(digest)
      options.onBlob?.(b.descriptor, 'stored')
    }
  } catch (err) {
    for (const d of added.reverse()) await store.delete(d).catch(() => false)
    throw err
  }
  return [...roots]
}

/** Opens an image reference as a source and the roots it selects. */
export async function openImportSource (ref: ImportSource): Promise<{ source: BlobSource, images: NamedImage[] }> {
  switch (ref.transport) {
    case 'oci': {
      const index = await readOciLayout(ref.path)
      return { source: layoutBlobSource(ref.path), images: selectLayoutEntries(index, ref.tag, ref.path) }
    }
    case 'oci-archive':
      return await readOciArchive(ref.path, ref.tag)
    case 'docker-archive':
      return await readDockerArchive(ref.path, { ...(ref.name === undefined ? {} : { name: ref.name }), ...(ref.index === undefined ? {} : { index: ref.index }) })
  }
}

/**
 * Imports the images an `oci:`, `oci-archive:` or `docker-archive:`
 * reference selects (every entry when no tag is given). Returns their root
 * descriptors with their names in the source (ref.name annotation, or
 * docker RepoTags); the caller decides which refs to set. Digests are
 * unchanged: blobs are stored as they are in the source.
 */
export async function importImage (store: ContentStore, ref: ImageRef, options: ImportOptions = {}): Promise<NamedImage[]> {
  if (ref.transport !== 'oci' && ref.transport !== 'oci-archive' && ref.transport !== 'docker-archive') {
    throw new ReferenceInvalidError(`cannot import from a ${ref.transport} reference; use oci:, oci-archive: or docker-archive:`)
  }
  const { source, images } = await openImportSource(ref)
  return await importFromSource(store, source, images, options)
}
