/**
 * Image archives: `oci-archive` (a tar of an OCI image layout) read and
 * written, and `docker-archive` (the `docker save` format) read.
 *
 * Archives are read from files by position: one pass over the tar headers
 * (bodies skipped by seeking) finds each member, then blobs are streamed
 * straight from their byte ranges into the store, never buffered whole.
 */
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { open, rename, rm } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { z } from 'zod'
import { digestHex, sha256Digest } from '../content/index.ts'
import type { BlobReader, Digest } from '../content/index.ts'
import { chainSources, fileRange, memorySource, readLocation } from './blob-source.ts'
import type { BlobSource } from './blob-source.ts'
import { MAX_CONFIG_SIZE, MAX_LAYOUT_FILE_SIZE, MAX_SYMLINK_HOPS, OCI_LAYOUT_VERSION } from './constants.ts'
import { ArchiveInvalidError, ImageNotFoundError, LayerCompressionError, TarHeaderTooLargeError, TarInvalidError } from './errors.ts'
import { walkImage } from './graph.ts'
import { FileByteInput } from './layer/byte-reader.ts'
import { detectCompression } from './layer/compression.ts'
import { cleanComponents } from './layer/safe-root.ts'
import type { TarEntryType } from './layer/tar-header.ts'
import { readTar } from './layer/tar-reader.ts'
import { encodeTar } from './layer/write.ts'
import type { LayerEntry } from './layer/write.ts'
import { checkOciLayoutFile, layoutIndexBytes, namedDescriptor, parseLayoutIndex, selectLayoutEntries } from './layout.ts'
import type { NamedImage } from './layout.ts'
import { OCI_CONFIG, OCI_LAYER_TAR, OCI_MANIFEST } from './media-types.ts'
import { describeIssues, encodeJson, parseConfigBytes } from './schemas.ts'
import type { Descriptor, ImageIndex } from './schemas.ts'
import { parseDockerName } from './reference.ts'
import type { DockerName } from './reference.ts'
import { isErrorOf } from '../util/error-class.ts'
import type { ErrorClass } from '../util/error-class.ts'

/** What reading a layer of the archive throws when the layer, so the archive, is malformed. */
const UNREADABLE_LAYER: readonly ErrorClass[] = [TarInvalidError, TarHeaderTooLargeError, LayerCompressionError]

export interface ArchiveMember {
  /** Normalized path inside the archive (no leading `./` or `/`). */
  name: string
  type: TarEntryType
  /** Offset of the body in the archive file. */
  offset: number
  size: number
  linkname: string
}

/** An archive file's members by normalized name, found by reading headers only. */
export interface ArchiveIndex {
  path: string
  members: Map<string, ArchiveMember>
}

function normalize (name: string, archive: string): string {
  try {
    return cleanComponents(name).join('/')
  } catch (err) {
    throw new ArchiveInvalidError(`${archive}: member ${JSON.stringify(name)}: ${(err as Error).message}`)
  }
}

/** Lists an (uncompressed) tar file's members without reading their bodies. */
export async function scanArchive (path: string): Promise<ArchiveIndex> {
  const fh = await open(path, 'r')
  try {
    const { size } = await fh.stat()
    const head = Buffer.alloc(Math.min(size, 6))
    await fh.read(head, 0, head.length, 0)
    const compression = detectCompression(head)
    if (compression !== 'none') throw new ArchiveInvalidError(`${path} is ${compression}-compressed; archives are read as plain tar files, decompress it first`)
    const members = new Map<string, ArchiveMember>()
    for await (const { header, offset } of readTar(new FileByteInput(fh, 0, size))) {
      const name = normalize(header.name, path)
      members.set(name, { name, type: header.type, offset, size: header.size, linkname: header.linkname })
    }
    return { path, members }
  } catch (err) {
    if (UNREADABLE_LAYER.some(cls => isErrorOf(err, cls))) throw new ArchiveInvalidError(`${path}: ${(err as Error).message}`)
    throw err
  } finally {
    await fh.close()
  }
}

/** The regular-file member a name leads to, following symlinks and hardlinks inside the archive. */
export function resolveMember (archive: ArchiveIndex, name: string): ArchiveMember | undefined {
  let current = normalize(name, archive.path)
  for (let hop = 0; hop <= MAX_SYMLINK_HOPS; hop++) {
    const m = archive.members.get(current)
    if (m === undefined) return undefined
    if (m.type === 'file') return m
    if (m.type === 'hardlink') current = normalize(m.linkname, archive.path)
    else if (m.type === 'symlink') current = normalize(m.linkname.startsWith('/') ? m.linkname : `${current.split('/').slice(0, -1).join('/')}/${m.linkname}`, archive.path)
    else return undefined
  }
  throw new ArchiveInvalidError(`${archive.path}: too many links resolving ${name}`)
}

async function readMember (archive: ArchiveIndex, name: string, max: number): Promise<Uint8Array | undefined> {
  const m = resolveMember(archive, name)
  if (m === undefined) return undefined
  return await readLocation(fileRange(archive.path, m.offset, m.size), max, `${archive.path}:${name}`)
}

/** Blobs of a scanned oci-archive: members `blobs/sha256/<hex>`. */
export function archiveBlobSource (archive: ArchiveIndex): BlobSource {
  return {
    locate: async (digest: Digest) => {
      const m = resolveMember(archive, `blobs/sha256/${digestHex(digest)}`)
      return m === undefined ? undefined : fileRange(archive.path, m.offset, m.size)
    }
  }
}

export interface OpenedArchive {
  /** The images the request selected, with their names. */
  images: NamedImage[]
  source: BlobSource
}

/** Opens an oci-archive: checks oci-layout, reads index.json, selects entries by tag (all when none). */
export async function readOciArchive (path: string, tag?: string): Promise<OpenedArchive & { index: ImageIndex }> {
  const archive = await scanArchive(path)
  checkOciLayoutFile(await readMember(archive, 'oci-layout', MAX_LAYOUT_FILE_SIZE), path)
  const indexBytes = await readMember(archive, 'index.json', MAX_LAYOUT_FILE_SIZE)
  if (indexBytes === undefined) throw new ArchiveInvalidError(`${path}: no index.json`)
  const index = parseLayoutIndex(indexBytes, path)
  return { index, images: selectLayoutEntries(index, tag, path), source: archiveBlobSource(archive) }
}

const DockerManifestSchema = z.array(z.looseObject({
  Config: z.string().min(1),
  RepoTags: z.array(z.string()).nullable().optional(),
  Layers: z.array(z.string().min(1))
})).min(1)

export interface DockerArchiveSelection {
  name?: DockerName
  index?: number
}

function sameName (a: DockerName, b: DockerName): boolean {
  return a.domain === b.domain && a.path === b.path && a.tag === b.tag
}

/**
 * Opens a `docker save` archive and converts the selected image(s) to OCI:
 * the config is kept byte for byte; each uncompressed layer tar becomes an
 * `application/vnd.oci.image.layer.v1.tar` blob whose digest is its diffID,
 * so the store's verification checks it against the config's rootfs.diff_ids.
 * Without a selection every image is opened, named by its RepoTags.
 */
export async function readDockerArchive (path: string, select: DockerArchiveSelection = {}): Promise<OpenedArchive> {
  const archive = await scanArchive(path)
  const manifestBytes = await readMember(archive, 'manifest.json', MAX_LAYOUT_FILE_SIZE)
  if (manifestBytes === undefined) throw new ArchiveInvalidError(`${path}: no manifest.json; not a docker-archive`)
  let json: unknown
  try { json = JSON.parse(new TextDecoder().decode(manifestBytes)) } catch { throw new ArchiveInvalidError(`${path}: manifest.json is not JSON`) }
  const r = DockerManifestSchema.safeParse(json)
  if (!r.success) throw new ArchiveInvalidError(`${path}: manifest.json: ${describeIssues(r.error)}`)
  let entries = r.data.map((e, i) => ({ e, i }))
  if (select.index !== undefined) {
    entries = entries.filter(x => x.i === select.index)
    if (entries.length === 0) throw new ImageNotFoundError(`${path} has ${r.data.length} image(s); there is no @${select.index}`)
  }
  const wanted = select.name
  if (wanted !== undefined) {
    entries = entries.filter(x => (x.e.RepoTags ?? []).some(t => { try { return sameName(parseDockerName(t), wanted) } catch { return false } }))
    if (entries.length === 0) throw new ImageNotFoundError(`${path} has no image tagged ${wanted.domain}/${wanted.path}:${wanted.tag ?? ''}`)
  }

  const memory = new Map<Digest, Uint8Array>()
  const layerMembers = new Map<Digest, ArchiveMember>()
  const images: NamedImage[] = []
  for (const { e } of entries) {
    const configBytes = await readMember(archive, e.Config, MAX_CONFIG_SIZE)
    if (configBytes === undefined) throw new ArchiveInvalidError(`${path}: config ${e.Config} is missing`)
    const config = parseConfigBytes(configBytes)
    const diffIds = config.rootfs.diff_ids
    if (diffIds.length !== e.Layers.length) {
      throw new ArchiveInvalidError(`${path}: ${e.Config} lists ${diffIds.length} diff_ids but manifest.json lists ${e.Layers.length} layers`)
    }
    const layers: Descriptor[] = []
    for (const [i, layerPath] of e.Layers.entries()) {
      const m = resolveMember(archive, layerPath)
      if (m === undefined) throw new ArchiveInvalidError(`${path}: layer ${layerPath} is missing`)
      const head = await readLocation(fileRange(path, m.offset, Math.min(m.size, 6)), 6, layerPath)
      if (detectCompression(head) !== 'none') throw new ArchiveInvalidError(`${path}: layer ${layerPath} is compressed; docker-archive layers are plain tars`)
      const diffId = diffIds[i] as Digest
      layerMembers.set(diffId, m)
      layers.push({ mediaType: OCI_LAYER_TAR, digest: diffId, size: m.size })
    }
    const configDescriptor: Descriptor = { mediaType: OCI_CONFIG, digest: sha256Digest(configBytes), size: configBytes.byteLength }
    const manifest = encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: configDescriptor, layers })
    const descriptor: Descriptor = { mediaType: OCI_MANIFEST, digest: sha256Digest(manifest), size: manifest.byteLength }
    memory.set(configDescriptor.digest, configBytes)
    memory.set(descriptor.digest, manifest)
    const tags = e.RepoTags ?? []
    if (tags.length === 0) images.push({ descriptor })
    for (const t of tags) images.push({ descriptor, refName: t })
  }
  const layerSource: BlobSource = {
    locate: async digest => {
      const m = layerMembers.get(digest)
      return m === undefined ? undefined : fileRange(path, m.offset, m.size)
    }
  }
  return { images, source: chainSources(memorySource(memory), layerSource) }
}

/**
 * Writes images from the store as an oci-archive file (replacing it
 * atomically). The tar is deterministic: sorted members, mtime 0, no owners.
 */
export async function writeOciArchive (file: string, store: BlobReader, images: readonly NamedImage[], onProgress?: (written: number) => void): Promise<void> {
  const entries: LayerEntry[] = [
    { type: 'directory', path: 'blobs', mode: 0o755 },
    { type: 'directory', path: 'blobs/sha256', mode: 0o755 },
    { type: 'file', path: 'oci-layout', mode: 0o644, content: encodeJson({ imageLayoutVersion: OCI_LAYOUT_VERSION }) },
    { type: 'file', path: 'index.json', mode: 0o644, content: layoutIndexBytes(images.map(namedDescriptor)) }
  ]
  const seen = new Set<Digest>()
  for (const image of images) {
    for await (const w of walkImage(store, image.descriptor)) {
      if (!w.present || seen.has(w.descriptor.digest)) continue
      seen.add(w.descriptor.digest)
      entries.push({ type: 'file', path: `blobs/sha256/${digestHex(w.descriptor.digest)}`, mode: 0o644, source: await store.path(w.descriptor.digest) })
    }
  }
  const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`
  try {
    let written = 0
    const counted = async function * (source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
      for await (const chunk of source) {
        written += chunk.byteLength
        onProgress?.(written)
        yield chunk
      }
    }
    await pipeline(Readable.from(encodeTar(entries, { sourceDateEpoch: 0 })), counted, createWriteStream(tmp, { flags: 'wx' }))
    const fh = await open(tmp, 'r+')
    try { await fh.sync() } finally { await fh.close() }
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}
