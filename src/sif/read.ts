/**
 * Reading a SIF file: the header and the descriptors of its used objects,
 * each checked to lie inside the file, and the bytes of small objects.
 * Partitions are not read into memory: callers take their offset and size
 * (unsquashfs reads the squashfs in place).
 */
import { open } from 'node:fs/promises'
import { DESCRIPTOR_SIZE, HEADER_SIZE, MAX_METADATA_OBJECT_SIZE } from './constants.ts'
import { SifInvalidError, SifLimitError, SifNoRootPartitionError } from './errors.ts'
import { decodeDescriptor, decodeHeader } from './format.ts'
import type { SifDescriptor, SifHeader } from './format.ts'

export interface SifFile {
  path: string
  /** Bytes of the file. */
  size: number
  header: SifHeader
  /** The used descriptors, in descriptor order. */
  objects: SifDescriptor[]
}

/** Reads and checks a SIF's header and descriptors. Throws SifInvalidError, or the fs error. */
export async function readSif (path: string): Promise<SifFile> {
  const fh = await open(path, 'r')
  try {
    const size = (await fh.stat()).size
    const head = Buffer.alloc(HEADER_SIZE)
    const { bytesRead } = await fh.read(head, 0, HEADER_SIZE, 0)
    const header = decodeHeader(head.subarray(0, bytesRead))
    if (header.descriptorsOffset + header.descriptorsSize > size) throw new SifInvalidError(`${path}: the descriptors end past the end of the file`)
    const table = Buffer.alloc(header.descriptorsSize)
    await fh.read(table, 0, table.byteLength, header.descriptorsOffset)
    const objects: SifDescriptor[] = []
    for (let i = 0; i < header.descriptorsTotal; i++) {
      const d = decodeDescriptor(table.subarray(i * DESCRIPTOR_SIZE, (i + 1) * DESCRIPTOR_SIZE))
      if (!d.used) continue
      if (d.offset + d.size > size) throw new SifInvalidError(`${path}: object ${d.id} ends past the end of the file`)
      objects.push(d)
    }
    return { path, size, header, objects }
  } finally {
    await fh.close()
  }
}

/** The primary system partition, which must be squashfs. Throws SifNoRootPartitionError. */
export function primaryPartition (sif: SifFile): SifDescriptor {
  const parts = sif.objects.filter(d => d.partition?.partType === 'primarySystem')
  const root = parts[0]
  if (root === undefined) throw new SifNoRootPartitionError(`${sif.path} has no primary system partition`)
  if (parts.length > 1) throw new SifInvalidError(`${sif.path} has ${parts.length} primary system partitions`)
  if (root.partition?.fsType !== 'squashfs') throw new SifNoRootPartitionError(`${sif.path}: the primary partition is ${String(root.partition?.fsType)}, not squashfs`)
  return root
}

/** The bytes of one (small) object: a definition file, labels, JSON. Throws SifLimitError past MAX_METADATA_OBJECT_SIZE. */
export async function readObject (sif: SifFile, d: SifDescriptor, limit = MAX_METADATA_OBJECT_SIZE): Promise<Uint8Array> {
  if (d.size > limit) throw new SifLimitError(`${sif.path}: object ${d.id} is ${d.size} bytes, more than ${limit}`)
  const fh = await open(sif.path, 'r')
  try {
    const b = Buffer.alloc(d.size)
    await fh.read(b, 0, d.size, d.offset)
    return b
  } finally {
    await fh.close()
  }
}
