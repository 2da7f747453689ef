/**
 * The global header and the descriptors, decoded from and encoded to their
 * on-disk bytes (offsets in ./constants.ts). Decoding checks every field
 * with a zod schema before anything uses it: a SIF is bytes from disk or
 * from a registry.
 *
 * Terms:
 * - object: a data object, a byte range of the data section that one
 *   descriptor names (type, id, group, link, offset, size).
 * - group: objects that belong together (a partition and its metadata);
 *   group 0 is "no group". Signatures link to an object or a whole group.
 * - primary partition: the partition of type primarySystem, the root
 *   filesystem Apptainer runs.
 */
import { z } from 'zod'
import {
  ARCH_CODES, ARCH_UNKNOWN, D, DESCRIPTOR_SIZE, DataType, ENTITY_SIZE, EXTRA_SIZE, FsType, GROUP_MASK, H, HEADER_SIZE,
  HashType, LAUNCH_SCRIPT_SIZE, MAGIC, NAME_SIZE, PartType, VERSION
} from './constants.ts'
import type { DataTypeName, FsTypeName, HashTypeName, PartTypeName } from './constants.ts'
import { SifInvalidError, SifLimitError } from './errors.ts'

export interface SifHeader {
  launchScript: string
  version: string
  /** The header's arch code ('02'), and its GOARCH name (`unknown` for '00' or a code not listed). */
  archCode: string
  arch: string
  /** The image UUID, lowercase 8-4-4-4-12. */
  id: string
  /** Seconds since the epoch. */
  createdAt: number
  modifiedAt: number
  descriptorsFree: number
  descriptorsTotal: number
  descriptorsOffset: number
  descriptorsSize: number
  dataOffset: number
  dataSize: number
}

export interface PartitionInfo { fsType: FsTypeName | number, partType: PartTypeName | number, arch: string }
export interface SignatureInfo { hashType: HashTypeName | number, /** The signer's fingerprint, hex; '' when none is recorded. */ entity: string }

export interface SifDescriptor {
  /** The type's name when this module knows it, else its number. */
  dataType: DataTypeName | number
  used: boolean
  id: number
  /** 0: in no group. */
  groupId: number
  /** What the object is linked to: nothing, another object, or a whole group. */
  link: { kind: 'none' } | { kind: 'object', id: number } | { kind: 'group', id: number }
  offset: number
  size: number
  sizeWithPadding: number
  createdAt: number
  modifiedAt: number
  name: string
  /** Set for partitions. */
  partition?: PartitionInfo
  /** Set for signatures. */
  signature?: SignatureInfo
}

const int = z.number().int().nonnegative()
const HeaderSchema = z.object({
  launchScript: z.string(),
  version: z.literal(VERSION, { message: `SIF version must be ${VERSION}` }),
  archCode: z.string().regex(/^\d\d$/, 'arch must be two digits'),
  arch: z.string(),
  id: z.string(),
  createdAt: z.number().int(),
  modifiedAt: z.number().int(),
  descriptorsFree: int,
  descriptorsTotal: int.max(1 << 20, 'more than 2^20 descriptors'),
  descriptorsOffset: int.min(HEADER_SIZE, 'descriptors overlap the header'),
  descriptorsSize: int,
  dataOffset: int,
  dataSize: int
}).refine(h => h.descriptorsSize === h.descriptorsTotal * DESCRIPTOR_SIZE, 'descriptors size is not total x 585')
  .refine(h => h.descriptorsFree <= h.descriptorsTotal, 'more free descriptors than descriptors')

const DescriptorSchema = z.object({
  id: int, groupId: int, offset: int, size: int, sizeWithPadding: int
}).refine(d => d.sizeWithPadding >= d.size, 'size with padding smaller than size')

function text (b: Uint8Array): string {
  const end = b.indexOf(0)
  return Buffer.from(end < 0 ? b : b.subarray(0, end)).toString('utf8')
}

function i64 (b: Buffer, at: number): number {
  const v = b.readBigInt64LE(at)
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new SifInvalidError(`field at byte ${at} is out of range`)
  return Number(v)
}

function nameOf<T extends Record<string, number>> (table: T, value: number): keyof T | number {
  for (const [k, v] of Object.entries(table)) if (v === value) return k
  return value
}

function valueOf (table: Record<string, number>, v: string | number): number {
  if (typeof v === 'number') return v
  const n = table[v]
  if (n === undefined) throw new SifLimitError(`unknown SIF value ${v}`)
  return n
}

function archName (code: string): string {
  return Object.entries(ARCH_CODES).find(([, c]) => c === code)?.[0] ?? 'unknown'
}

/** The SIF arch code of an OCI / Go architecture name ('00' when SIF has none for it). */
export function archCode (arch: string): string {
  return ARCH_CODES[arch] ?? ARCH_UNKNOWN
}

function formatUuid (b: Uint8Array): string {
  const h = Buffer.from(b).toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

function parsed<T> (schema: z.ZodType<T>, value: T, what: string): T {
  const r = schema.safeParse(value)
  if (!r.success) throw new SifInvalidError(`${what}: ${r.error.issues.map(i => i.message).join('; ')}`)
  return r.data
}

/** Decodes the 128-byte global header. Throws SifInvalidError. */
export function decodeHeader (bytes: Uint8Array): SifHeader {
  if (bytes.byteLength < HEADER_SIZE) throw new SifInvalidError(`a SIF header is ${HEADER_SIZE} bytes; got ${bytes.byteLength}`)
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, HEADER_SIZE)
  if (text(b.subarray(H.magic, H.magic + 10)) !== MAGIC) throw new SifInvalidError('not a SIF file (no SIF_MAGIC)')
  const archCodeText = text(b.subarray(H.arch, H.arch + 3))
  return parsed(HeaderSchema, {
    launchScript: text(b.subarray(H.launch, H.launch + LAUNCH_SCRIPT_SIZE)),
    version: text(b.subarray(H.version, H.version + 3)),
    archCode: archCodeText,
    arch: archName(archCodeText),
    id: formatUuid(b.subarray(H.uuid, H.uuid + 16)),
    createdAt: i64(b, H.created),
    modifiedAt: i64(b, H.modified),
    descriptorsFree: i64(b, H.descriptorsFree),
    descriptorsTotal: i64(b, H.descriptorsTotal),
    descriptorsOffset: i64(b, H.descriptorsOffset),
    descriptorsSize: i64(b, H.descriptorsSize),
    dataOffset: i64(b, H.dataOffset),
    dataSize: i64(b, H.dataSize)
  }, 'SIF header') as SifHeader
}

function decodeLink (raw: number): SifDescriptor['link'] {
  if (raw === 0) return { kind: 'none' }
  if ((raw & GROUP_MASK) >>> 0 === GROUP_MASK) return { kind: 'group', id: (raw & ~GROUP_MASK) >>> 0 }
  return { kind: 'object', id: raw }
}

/** Decodes one 585-byte descriptor. Throws SifInvalidError. */
export function decodeDescriptor (bytes: Uint8Array): SifDescriptor {
  if (bytes.byteLength < DESCRIPTOR_SIZE) throw new SifInvalidError(`a SIF descriptor is ${DESCRIPTOR_SIZE} bytes; got ${bytes.byteLength}`)
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, DESCRIPTOR_SIZE)
  const type = b.readInt32LE(D.dataType)
  const extra = b.subarray(D.extra, D.extra + EXTRA_SIZE)
  const d: SifDescriptor = {
    dataType: nameOf(DataType, type),
    used: b[D.used] !== 0,
    id: b.readUInt32LE(D.id),
    groupId: (b.readUInt32LE(D.groupId) & ~GROUP_MASK) >>> 0,
    link: decodeLink(b.readUInt32LE(D.linkedId)),
    offset: i64(b, D.offset),
    size: i64(b, D.size),
    sizeWithPadding: i64(b, D.sizeWithPadding),
    createdAt: i64(b, D.created),
    modifiedAt: i64(b, D.modified),
    name: text(b.subarray(D.name, D.name + NAME_SIZE))
  }
  parsed(DescriptorSchema, d, `SIF descriptor ${d.id}`)
  if (type === DataType.partition) {
    d.partition = { fsType: nameOf(FsType, extra.readInt32LE(0)), partType: nameOf(PartType, extra.readInt32LE(4)), arch: archName(text(extra.subarray(8, 11))) }
  } else if (type === DataType.signature) {
    const entity = extra.subarray(4, 4 + ENTITY_SIZE)
    let end = entity.length
    while (end > 0 && entity[end - 1] === 0) end--
    d.signature = { hashType: nameOf(HashType, extra.readInt32LE(0)), entity: entity.subarray(0, end).toString('hex') }
  }
  return d
}

function putText (b: Buffer, at: number, size: number, value: string, what: string): void {
  const bytes = Buffer.from(value, 'utf8')
  if (bytes.byteLength > size) throw new SifLimitError(`${what} is longer than ${size} bytes`)
  bytes.copy(b, at)
}

function parseUuid (id: string): Buffer {
  const hex = id.replaceAll('-', '')
  if (!/^[0-9a-f]{32}$/i.test(hex)) throw new SifLimitError(`${JSON.stringify(id)} is not a UUID`)
  return Buffer.from(hex, 'hex')
}

/** Encodes a global header; the launch script must leave room for a NUL (as sylabs/sif requires). */
export function encodeHeader (h: Omit<SifHeader, 'arch' | 'version'>): Uint8Array {
  const b = Buffer.alloc(HEADER_SIZE)
  putText(b, H.launch, LAUNCH_SCRIPT_SIZE - 1, h.launchScript, 'launch script')
  putText(b, H.magic, 10, MAGIC, 'magic')
  putText(b, H.version, 3, VERSION, 'version')
  putText(b, H.arch, 3, h.archCode, 'arch')
  parseUuid(h.id).copy(b, H.uuid)
  b.writeBigInt64LE(BigInt(h.createdAt), H.created)
  b.writeBigInt64LE(BigInt(h.modifiedAt), H.modified)
  b.writeBigInt64LE(BigInt(h.descriptorsFree), H.descriptorsFree)
  b.writeBigInt64LE(BigInt(h.descriptorsTotal), H.descriptorsTotal)
  b.writeBigInt64LE(BigInt(h.descriptorsOffset), H.descriptorsOffset)
  b.writeBigInt64LE(BigInt(h.descriptorsSize), H.descriptorsSize)
  b.writeBigInt64LE(BigInt(h.dataOffset), H.dataOffset)
  b.writeBigInt64LE(BigInt(h.dataSize), H.dataSize)
  return b
}

function encodeLink (link: SifDescriptor['link']): number {
  switch (link.kind) {
    case 'none': return 0
    case 'object': return link.id
    case 'group': return (link.id | GROUP_MASK) >>> 0
  }
}

/** Encodes one descriptor (an unused one is all zeros: pass undefined). */
export function encodeDescriptor (d: SifDescriptor | undefined): Uint8Array {
  const b = Buffer.alloc(DESCRIPTOR_SIZE)
  if (d === undefined) return b
  b.writeInt32LE(valueOf(DataType, d.dataType), D.dataType)
  b[D.used] = d.used ? 1 : 0
  b.writeUInt32LE(d.id, D.id)
  b.writeUInt32LE((d.groupId | GROUP_MASK) >>> 0, D.groupId)
  b.writeUInt32LE(encodeLink(d.link), D.linkedId)
  b.writeBigInt64LE(BigInt(d.offset), D.offset)
  b.writeBigInt64LE(BigInt(d.size), D.size)
  b.writeBigInt64LE(BigInt(d.sizeWithPadding), D.sizeWithPadding)
  b.writeBigInt64LE(BigInt(d.createdAt), D.created)
  b.writeBigInt64LE(BigInt(d.modifiedAt), D.modified)
  putText(b, D.name, NAME_SIZE, d.name, 'object name')
  if (d.partition !== undefined) {
    b.writeInt32LE(valueOf(FsType, d.partition.fsType), D.extra)
    b.writeInt32LE(valueOf(PartType, d.partition.partType), D.extra + 4)
    putText(b, D.extra + 8, 3, archCode(d.partition.arch), 'arch')
  } else if (d.signature !== undefined) {
    b.writeInt32LE(valueOf(HashType, d.signature.hashType), D.extra)
    Buffer.from(d.signature.entity, 'hex').copy(b, D.extra + 4, 0, ENTITY_SIZE)
  }
  return b
}
