/**
 * type=local and type=tar (buildx's): the image's root filesystem itself,
 * not an image. `local` unpacks it into a directory, `tar` writes a tar of
 * it. With `platform=`, or for a single-platform image, the tree is the
 * root; an index without `platform=` gives one subdirectory per platform
 * (`linux_amd64/`, `linux_arm64_v8/`), as buildx lays a multi-platform
 * local output out.
 *
 * The layers are applied with src/oci's unpackImage (whiteouts, diffIDs
 * checked, setuid bits stripped). Unpacking is rootless, so a local tree
 * belongs to the user who exported it. The tar takes each entry's owner and
 * mode (setuid bits included) from the last layer that wrote it, as the
 * image has them, and its times clamped to SOURCE_DATE_EPOCH (the same image
 * gives the same tar). dest of type=local must be absent or empty; a tar
 * replaces its file atomically.
 */
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { OPAQUE_WHITEOUT, WHITEOUT_PREFIX, decompressDetected, encodeTar, formatPlatform, listTree, parseDescribed, parsePlatform, readTar, unpackImage } from '../oci/index.ts'
import type { Descriptor, LayerEntry, Platform, ResolvedImage } from '../oci/index.ts'
import type { BlobReader } from '../content/index.ts'
import { removeTree } from '../util/fs.ts'
import { ExportUnsupportedError } from './errors.ts'
import type { ExportImage, ExportOptions, ExportResult, ExporterComponents } from './index.ts'
import type { LocalSpec, TarSpec } from './output-spec.ts'

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024

/** What to unpack where: one tree at '' (the root), or one per platform in its subdirectory. */
interface Tree { subdir: string, root: Descriptor, platform?: Platform }

/** `linux/arm64/v8` as a directory name: `linux_arm64_v8`. */
export function platformDirName (p: Platform): string {
  return formatPlatform(p).replaceAll('/', '_')
}

async function treesOf (image: ExportImage, platformText: string | undefined): Promise<Tree[]> {
  if (platformText !== undefined) return [{ subdir: '', root: image.root, platform: parsePlatform(platformText) }]
  const parsed = parseDescribed(image.root, await image.store.readBytes(image.root.digest, MAX_MANIFEST_BYTES))
  if (parsed.kind !== 'index') return [{ subdir: '', root: image.root }]
  const entries = parsed.value.manifests.filter(m => m.platform !== undefined && m.platform.os !== 'unknown')
  if (entries.length === 0) throw new ExportUnsupportedError(`${image.root.digest} is an index with no platform entries: nothing to unpack`)
  if (entries.length === 1) return [{ subdir: '', root: image.root, platform: entries[0]?.platform as Platform }]
  return entries.map(m => ({ subdir: platformDirName(m.platform as Platform), root: image.root, platform: m.platform as Platform }))
}

/** Unpacks each tree under dir; returns the image each tree came from. */
async function unpackTrees (image: ExportImage, trees: Tree[], dir: string, signal?: AbortSignal): Promise<ResolvedImage[]> {
  const images: ResolvedImage[] = []
  for (const t of trees) {
    const into = t.subdir === '' ? dir : join(dir, t.subdir)
    await mkdir(into, { recursive: true })
    images.push(await unpackImage(image.store, t.root, into, { ...(t.platform !== undefined ? { platform: t.platform } : {}), ...(signal !== undefined ? { signal } : {}) }))
  }
  return images
}

interface Owner { uid: number, gid: number, mode: number }

/** `./a/b/` -> `a/b`: a tar name as listTree writes paths. */
const cleanName = (name: string): string => name.split('/').filter(c => c !== '' && c !== '.').join('/')

/**
 * Owner and mode of every path of an image's root filesystem, from its
 * layers' headers: the last layer that writes a path decides, a whiteout
 * removes a path and what is under it, an opaque whiteout what is under its
 * directory. (The unpacked tree has the exporting user's ids and no setuid
 * bits; the image's own are these.)
 */
async function ownersOf (store: BlobReader, resolved: ResolvedImage, signal?: AbortSignal): Promise<Map<string, Owner>> {
  const owners = new Map<string, Owner>()
  const removeUnder = (dir: string, andSelf: boolean): void => {
    if (andSelf) owners.delete(dir)
    const prefix = dir === '' ? '' : `${dir}/`
    for (const k of owners.keys()) if (k.startsWith(prefix) && k !== dir) owners.delete(k)
  }
  for (const layer of resolved.manifest.layers) {
    const { tar } = await decompressDetected(store.read(layer.digest, { signal }))
    for await (const { header } of readTar(tar)) {
      const path = cleanName(header.name)
      const slash = path.lastIndexOf('/')
      const base = path.slice(slash + 1)
      const parent = slash < 0 ? '' : path.slice(0, slash)
      if (base === OPAQUE_WHITEOUT) removeUnder(parent, false)
      else if (base.startsWith(WHITEOUT_PREFIX)) removeUnder(`${parent === '' ? '' : `${parent}/`}${base.slice(WHITEOUT_PREFIX.length)}`, true)
      else if (path !== '') owners.set(path, { uid: header.uid, gid: header.gid, mode: header.mode & 0o7777 })
    }
  }
  return owners
}

/** The tree's entries with the image's owners and modes; a path no layer names (a per-platform directory) is 0:0. */
async function imageEntries (rootfs: string, store: BlobReader, trees: Tree[], images: ResolvedImage[], signal?: AbortSignal): Promise<LayerEntry[]> {
  const bySubdir = new Map<string, Map<string, Owner>>()
  for (const [i, t] of trees.entries()) bySubdir.set(t.subdir, await ownersOf(store, images[i] as ResolvedImage, signal))
  return (await listTree(rootfs)).filter(e => e.type !== 'whiteout' && e.type !== 'opaque').map(e => {
    const sub = trees.length > 1 ? e.path.split('/')[0] as string : ''
    const owner = bySubdir.get(sub)?.get(sub === '' ? e.path : e.path.slice(sub.length + 1))
    if (owner === undefined) return e
    return e.type === 'symlink' ? { ...e, uid: owner.uid, gid: owner.gid } : { ...e, uid: owner.uid, gid: owner.gid, mode: owner.mode }
  })
}

export async function exportLocal (image: ExportImage, spec: LocalSpec, options: ExportOptions): Promise<ExportResult> {
  options.signal?.throwIfAborted()
  const trees = await treesOf(image, spec.platform)
  const present = await readdir(spec.dest).catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return []; throw err })
  if (present.length > 0) throw new ExportUnsupportedError(`type=local: ${spec.dest} is not empty; unpacking over other files could mix two trees (give an empty or new directory)`)
  await mkdir(spec.dest, { recursive: true })
  await unpackTrees(image, trees, spec.dest, options.signal)
  options.onProgress?.({ type: 'local', event: 'manifest', digest: image.root.digest })
  return { description: `local:${spec.dest}`, digest: image.root.digest }
}

export async function exportTar (image: ExportImage, spec: TarSpec, options: ExportOptions, components: ExporterComponents): Promise<ExportResult> {
  options.signal?.throwIfAborted()
  const trees = await treesOf(image, spec.platform)
  const work = await mkdtemp(join(components.tmpDir ?? tmpdir(), 'kiln-rootfs-'))
  try {
    const rootfs = join(work, 'rootfs')
    await mkdir(rootfs)
    const images = await unpackTrees(image, trees, rootfs, options.signal)
    const entries = await imageEntries(rootfs, image.store, trees, images, options.signal)
    await mkdir(dirname(spec.dest), { recursive: true })
    const tmp = `${spec.dest}.tmp-${randomBytes(6).toString('hex')}`
    try {
      await pipeline(Readable.from(encodeTar(entries, {
        ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}),
        ...(options.signal !== undefined ? { signal: options.signal } : {})
      })), createWriteStream(tmp, { flags: 'wx', mode: 0o644 }))
      await rename(tmp, spec.dest)
    } catch (err) {
      await rm(tmp, { force: true })
      throw err
    }
  } finally {
    await removeTree(work)
  }
  options.onProgress?.({ type: 'tar', event: 'manifest', digest: image.root.digest })
  return { description: `tar:${spec.dest}`, digest: image.root.digest }
}
