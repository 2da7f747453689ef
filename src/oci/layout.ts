/**
 * OCI image layouts (image-spec image-layout.md): a directory with an
 * `oci-layout` file, an `index.json` and `blobs/sha256/<hex>`. Entries of
 * index.json are named by the `org.opencontainers.image.ref.name`
 * annotation, which is what `oci:DIR:TAG` selects.
 */
import { randomBytes } from 'node:crypto'
import { lstat, mkdir, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { digestHex } from '../content/index.ts'
import { copyBlobFile, writeFileAtomic } from '../util/fs.ts'
import type { BlobReader } from '../content/index.ts'
import { ANNOTATION_REF_NAME, MAX_LAYOUT_FILE_SIZE, OCI_LAYOUT_VERSION } from './constants.ts'
import { ImageNotFoundError, LayoutInvalidError, ManifestInvalidError } from './errors.ts'
import { walkImage } from './graph.ts'
import { OCI_INDEX } from './media-types.ts'
import { describeIssues, encodeJson, parseManifestBytes } from './schemas.ts'
import type { Descriptor, ImageIndex } from './schemas.ts'

/** A root of an image together with the name it goes by in a layout or archive. */
export interface NamedImage {
  descriptor: Descriptor
  refName?: string
}

const OciLayoutFileSchema = z.looseObject({ imageLayoutVersion: z.string() })

/** Checks the bytes of an `oci-layout` file; LayoutInvalidError when absent or wrong. */
export function checkOciLayoutFile (bytes: Uint8Array | undefined, where: string): void {
  if (bytes === undefined) throw new LayoutInvalidError(`${where}: no oci-layout file; not an OCI image layout`)
  let json: unknown
  try { json = JSON.parse(new TextDecoder().decode(bytes)) } catch { throw new LayoutInvalidError(`${where}: oci-layout is not JSON`) }
  const r = OciLayoutFileSchema.safeParse(json)
  if (!r.success) throw new LayoutInvalidError(`${where}: oci-layout: ${describeIssues(r.error)}`)
  if (!r.data.imageLayoutVersion.startsWith('1.')) throw new LayoutInvalidError(`${where}: unsupported imageLayoutVersion ${r.data.imageLayoutVersion}`)
}

/** Parses a layout's index.json bytes (an image index). */
export function parseLayoutIndex (bytes: Uint8Array, where: string): ImageIndex {
  try {
    const parsed = parseManifestBytes(bytes)
    if (parsed.kind !== 'index') throw new ManifestInvalidError('it is a manifest, not an index')
    return parsed.value
  } catch (err) {
    throw new LayoutInvalidError(`${where}: index.json: ${(err as Error).message}`)
  }
}

/**
 * The entries of a layout index that a tag selects: those whose ref.name is
 * the tag; all entries when no tag is given. ImageNotFoundError when a tag
 * matches nothing.
 */
export function selectLayoutEntries (index: ImageIndex, tag: string | undefined, where: string): NamedImage[] {
  const all = index.manifests.map(d => {
    const refName = d.annotations?.[ANNOTATION_REF_NAME]
    return refName === undefined ? { descriptor: d } : { descriptor: d, refName }
  })
  if (tag === undefined) return all
  const picked = all.filter(e => e.refName === tag)
  if (picked.length === 0) {
    const names = all.flatMap(e => e.refName === undefined ? [] : [e.refName])
    throw new ImageNotFoundError(`${where} has no image named ${JSON.stringify(tag)}${names.length > 0 ? `; it has ${names.join(', ')}` : ''}`)
  }
  return picked
}

async function readSmallFile (path: string): Promise<Uint8Array | undefined> {
  let st
  try { st = await lstat(path) } catch { return undefined }
  if (!st.isFile()) throw new LayoutInvalidError(`${path} is not a regular file`)
  if (st.size > MAX_LAYOUT_FILE_SIZE) throw new LayoutInvalidError(`${path} is ${st.size} bytes, over the limit of ${MAX_LAYOUT_FILE_SIZE}`)
  return await readFile(path)
}

/** Reads and checks a layout directory's oci-layout and index.json. */
export async function readOciLayout (dir: string): Promise<ImageIndex> {
  checkOciLayoutFile(await readSmallFile(join(dir, 'oci-layout')), dir)
  const bytes = await readSmallFile(join(dir, 'index.json'))
  if (bytes === undefined) throw new LayoutInvalidError(`${dir}: no index.json`)
  return parseLayoutIndex(bytes, dir)
}

/** The index.json bytes for entries, ref names as annotations. */
export function layoutIndexBytes (entries: readonly Descriptor[]): Uint8Array {
  return encodeJson({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries })
}

export function namedDescriptor (image: NamedImage): Descriptor {
  if (image.refName === undefined) return image.descriptor
  return { ...image.descriptor, annotations: { ...image.descriptor.annotations, [ANNOTATION_REF_NAME]: image.refName } }
}

/** Merges new entries into an index's list: an entry with the same ref.name (or the same unnamed digest) is replaced. */
export function mergeIndexEntries (existing: readonly Descriptor[], added: readonly Descriptor[]): Descriptor[] {
  const key = (d: Descriptor): string => d.annotations?.[ANNOTATION_REF_NAME] !== undefined ? `name:${d.annotations[ANNOTATION_REF_NAME]}` : `digest:${d.digest}`
  const replaced = new Set(added.map(key))
  return [...existing.filter(d => !replaced.has(key(d))), ...added]
}

async function copyBlobInto (dir: string, store: BlobReader, d: Descriptor): Promise<void> {
  const dest = join(dir, 'blobs', 'sha256', digestHex(d.digest))
  try {
    const st = await lstat(dest)
    if (st.isFile() && st.size === d.size) return // content-addressed: same name, same bytes
  } catch { /* absent */ }
  const tmp = `${dest}.tmp-${randomBytes(6).toString('hex')}`
  try {
    await copyBlobFile(await store.path(d.digest), tmp)
    await rename(tmp, dest)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

/**
 * Writes images from the store into an OCI image layout at dir, creating it
 * or merging into an existing one (entries with the same ref name are
 * replaced). Blobs are copied as they are: digests do not change. index.json
 * is replaced atomically, after every blob is in place.
 */
export async function writeOciLayout (dir: string, store: BlobReader, images: readonly NamedImage[], onProgress?: (written: number) => void): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true })
  const layoutFile = await readSmallFile(join(dir, 'oci-layout'))
  if (layoutFile === undefined) await writeFileAtomic(join(dir, 'oci-layout'), encodeJson({ imageLayoutVersion: OCI_LAYOUT_VERSION }))
  else checkOciLayoutFile(layoutFile, dir)
  const existingBytes = await readSmallFile(join(dir, 'index.json'))
  const existing = existingBytes === undefined ? [] : parseLayoutIndex(existingBytes, dir).manifests
  let written = 0
  for (const image of images) {
    for await (const w of walkImage(store, image.descriptor)) {
      if (!w.present) continue
      await copyBlobInto(dir, store, w.descriptor)
      written += w.descriptor.size
      onProgress?.(written)
    }
  }
  await writeFileAtomic(join(dir, 'index.json'), layoutIndexBytes(mergeIndexEntries(existing, images.map(namedDescriptor))))
}
