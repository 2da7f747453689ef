/**
 * type=local and type=tar (buildx's): the image's root filesystem itself,
 * not an image. `local` unpacks it into a directory, `tar` writes a tar of
 * it. With `platform=`, or for a single-platform image, the tree is the
 * root; an index without `platform=` gives one subdirectory per platform
 * (`linux_amd64/`, `linux_arm64_v8/`), as buildx lays a multi-platform
 * local output out.
 *
 * The layers are applied with src/oci's unpackImage (whiteouts, diffIDs
 * checked, setuid bits stripped). Unpacking is rootless, so owners are not
 * kept: a local tree belongs to the user who exported it, and the tar's
 * entries are 0:0, its times clamped to SOURCE_DATE_EPOCH (the same image
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
import { encodeTar, formatPlatform, listTree, parseDescribed, parsePlatform, unpackImage } from '../oci/index.ts'
import type { Descriptor, LayerEntry, Platform } from '../oci/index.ts'
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

async function unpackTrees (image: ExportImage, trees: Tree[], dir: string, signal?: AbortSignal): Promise<void> {
  for (const t of trees) {
    const into = t.subdir === '' ? dir : join(dir, t.subdir)
    await mkdir(into, { recursive: true })
    await unpackImage(image.store, t.root, into, { ...(t.platform !== undefined ? { platform: t.platform } : {}), ...(signal !== undefined ? { signal } : {}) })
  }
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
    await unpackTrees(image, trees, rootfs, options.signal)
    // Owners are the image's root, as in every rootless unpack; modes, links and (clamped) times are the tree's.
    const entries: LayerEntry[] = (await listTree(rootfs)).filter(e => e.type !== 'whiteout')
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
