/**
 * An image as a SIF: the image (one platform of it) unpacked into a rootfs
 * with src/oci's unpackImage, given Apptainer's metadata
 * (./apptainer-metadata.ts), squashed with mksquashfs, and written as a SIF
 * whose objects are, in order: the definition file (DataDeffile, when the
 * image was built from one) and the root filesystem (a primary system
 * partition, squashfs, in the image's architecture). All in group 1, as
 * Apptainer writes them.
 *
 * Deterministic: the SIF's UUID is derived from the manifest digest (a
 * version-5-style UUID of its sha256), and every time in it is
 * SOURCE_DATE_EPOCH (option, else the environment variable, else 0). The
 * same image and epoch give the same bytes.
 */
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import type { BlobReader, Digest } from '../content/index.ts'
import { resolveSourceDateEpoch, unpackImage } from '../oci/index.ts'
import type { Descriptor, Platform } from '../oci/index.ts'
import { removeTree } from '../util/fs.ts'
import { writeApptainerMetadata } from './apptainer-metadata.ts'
import type { SifDescriptor } from './format.ts'
import { makeSquashfs } from './squashfs.ts'
import { writeSif } from './write.ts'
import type { SifObjectInput } from './write.ts'

export interface SifExportOptions {
  /** Platform to take from an index; default the host's. */
  platform?: Platform
  /** The Apptainer definition the image was built from, stored as its DataDeffile object. */
  definition?: string
  /** Seconds; default $SOURCE_DATE_EPOCH, else 0. */
  sourceDateEpoch?: number
  /** Where the rootfs and the squashfs are made; default os.tmpdir(). */
  tmpDir?: string
  signal?: AbortSignal
}

export interface WrittenSif {
  /** The single-platform manifest the SIF was made from. */
  manifest: Descriptor
  /** The SIF's UUID. */
  id: string
  objects: SifDescriptor[]
}

/** The UUID a SIF made from this manifest gets: sha256 of the digest, with the version (5) and variant bits set. */
export function sifIdFor (manifestDigest: Digest): string {
  const b = createHash('sha256').update(manifestDigest).digest().subarray(0, 16)
  b[6] = ((b[6] as number) & 0x0f) | 0x50
  b[8] = ((b[8] as number) & 0x3f) | 0x80
  const h = b.toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/** Writes the image at root as a SIF at dest (replaced atomically). Throws SquashfsToolError, SifLimitError, or src/oci's errors. */
export async function exportSif (store: BlobReader, root: Descriptor, dest: string, options: SifExportOptions = {}): Promise<WrittenSif> {
  const epoch = resolveSourceDateEpoch(options.sourceDateEpoch)
  const tmp = await mkdtemp(join(options.tmpDir ?? tmpdir(), 'kiln-sif-'))
  try {
    const rootfs = join(tmp, 'rootfs')
    await mkdir(rootfs)
    const image = await unpackImage(store, root, rootfs, {
      ...(options.platform === undefined ? {} : { platform: options.platform }),
      ...(options.signal === undefined ? {} : { signal: options.signal })
    })
    await writeApptainerMetadata(rootfs, { config: image.config, ...(options.definition === undefined ? {} : { definition: options.definition }) })
    const squashfs = join(tmp, 'root.squashfs')
    await makeSquashfs(rootfs, squashfs, epoch, options.signal)
    const objects: SifObjectInput[] = []
    if (options.definition !== undefined) objects.push({ dataType: 'deffile', data: Buffer.from(options.definition, 'utf8') })
    objects.push({ dataType: 'partition', data: { file: squashfs }, partition: { fsType: 'squashfs', partType: 'primarySystem', arch: image.config.architecture } })
    const id = sifIdFor(image.descriptor.digest)
    await mkdir(dirname(dest), { recursive: true })
    const written = await writeSif(dest, { id, time: epoch, objects, ...(options.signal === undefined ? {} : { signal: options.signal }) })
    return { manifest: image.descriptor, id, objects: written }
  } finally {
    await removeTree(tmp)
  }
}
