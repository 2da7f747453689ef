/**
 * Writing a SIF file from a list of objects, laid out as sylabs/sif's
 * CreateContainer does: header, descriptors from DEFAULT_DESCRIPTORS_OFFSET
 * (48 of them, unused ones zero), then each object in order, partitions
 * aligned to PARTITION_ALIGNMENT. Object ids are 1, 2, ... in that order.
 * Nothing here reads a clock or a random source: the same input gives the
 * same bytes. The file is written beside dest and renamed over it.
 */
import { createReadStream } from 'node:fs'
import { open, rename, rm, stat } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import {
  APPTAINER_LAUNCH_SCRIPT, DEFAULT_DESCRIPTOR_CAPACITY, DEFAULT_DESCRIPTORS_OFFSET, DESCRIPTOR_SIZE, PARTITION_ALIGNMENT
} from './constants.ts'
import type { DataTypeName } from './constants.ts'
import { SifLimitError } from './errors.ts'
import { archCode, encodeDescriptor, encodeHeader } from './format.ts'
import type { PartitionInfo, SifDescriptor, SignatureInfo } from './format.ts'

export interface SifObjectInput {
  dataType: DataTypeName
  /** The object's bytes, or a file holding them. */
  data: Uint8Array | { file: string }
  /** Default 1 (sylabs/sif's default group); 0 puts it in no group. */
  groupId?: number
  link?: SifDescriptor['link']
  name?: string
  partition?: PartitionInfo
  signature?: SignatureInfo
}

export interface WriteSifInit {
  /** The image UUID (8-4-4-4-12). */
  id: string
  /** Seconds since the epoch, for the header and every object. */
  time: number
  objects: readonly SifObjectInput[]
  /** Default Apptainer's `#!/usr/bin/env run-singularity`. */
  launchScript?: string
  signal?: AbortSignal
}

function align (n: number, to: number): number {
  return n % to === 0 ? n : n + to - (n % to)
}

async function sizeOf (data: SifObjectInput['data']): Promise<number> {
  return data instanceof Uint8Array ? data.byteLength : (await stat(data.file)).size
}

/** Writes the SIF; returns the descriptors it wrote. Throws SifLimitError. */
export async function writeSif (dest: string, init: WriteSifInit): Promise<SifDescriptor[]> {
  if (init.objects.length > DEFAULT_DESCRIPTOR_CAPACITY) throw new SifLimitError(`a SIF holds at most ${DEFAULT_DESCRIPTOR_CAPACITY} objects; ${init.objects.length} given`)
  const descriptorsSize = DEFAULT_DESCRIPTOR_CAPACITY * DESCRIPTOR_SIZE
  const dataOffset = DEFAULT_DESCRIPTORS_OFFSET + descriptorsSize
  const descriptors: SifDescriptor[] = []
  let end = dataOffset
  for (const [i, o] of init.objects.entries()) {
    const size = await sizeOf(o.data)
    const offset = o.dataType === 'partition' ? align(end, PARTITION_ALIGNMENT) : end
    descriptors.push({
      dataType: o.dataType,
      used: true,
      id: i + 1,
      groupId: o.groupId ?? 1,
      link: o.link ?? { kind: 'none' },
      offset,
      size,
      sizeWithPadding: offset - end + size,
      createdAt: init.time,
      modifiedAt: init.time,
      name: o.name ?? '',
      ...(o.partition === undefined ? {} : { partition: o.partition }),
      ...(o.signature === undefined ? {} : { signature: o.signature })
    })
    end = offset + size
  }
  const primary = descriptors.find(d => d.partition?.partType === 'primarySystem')
  const header = encodeHeader({
    launchScript: init.launchScript ?? APPTAINER_LAUNCH_SCRIPT,
    archCode: archCode(primary?.partition?.arch ?? 'unknown'),
    id: init.id,
    createdAt: init.time,
    modifiedAt: init.time,
    descriptorsFree: DEFAULT_DESCRIPTOR_CAPACITY - descriptors.length,
    descriptorsTotal: DEFAULT_DESCRIPTOR_CAPACITY,
    descriptorsOffset: DEFAULT_DESCRIPTORS_OFFSET,
    descriptorsSize,
    dataOffset,
    dataSize: end - dataOffset
  })

  const tmp = `${dest}.tmp-${randomBytes(6).toString('hex')}`
  const fh = await open(tmp, 'wx', 0o755)
  let ok = false
  try {
    await fh.write(header, 0, header.byteLength, 0)
    for (let i = 0; i < DEFAULT_DESCRIPTOR_CAPACITY; i++) {
      const b = encodeDescriptor(descriptors[i])
      await fh.write(b, 0, b.byteLength, DEFAULT_DESCRIPTORS_OFFSET + i * DESCRIPTOR_SIZE)
    }
    for (const [i, o] of init.objects.entries()) {
      init.signal?.throwIfAborted()
      const d = descriptors[i] as SifDescriptor
      if (o.data instanceof Uint8Array) {
        await fh.write(o.data, 0, o.data.byteLength, d.offset)
        continue
      }
      let at = d.offset
      for await (const chunk of createReadStream(o.data.file, { signal: init.signal }) as AsyncIterable<Buffer>) {
        await fh.write(chunk, 0, chunk.byteLength, at)
        at += chunk.byteLength
      }
      if (at !== d.offset + d.size) throw new SifLimitError(`${o.data.file} changed size while it was written`)
    }
    // The gap before an aligned partition must be zeros even when the last object is empty.
    await fh.truncate(end)
    await fh.sync()
    ok = true
  } finally {
    await fh.close()
    if (!ok) await rm(tmp, { force: true })
  }
  await rename(tmp, dest).catch(async (err: unknown) => { await rm(tmp, { force: true }); throw err })
  return descriptors
}
