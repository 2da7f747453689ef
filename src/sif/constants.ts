/**
 * The numbers of the SIF format as sylabs/sif (pkg/sif, spec version 01)
 * fixes them: all integers little-endian, structures packed with no padding
 * (Go's encoding/binary), so the offsets below are byte offsets.
 *
 * Global header, 128 bytes at offset 0 (pkg/sif/sif.go `header`):
 *   0 launch script [32] | 32 magic "SIF_MAGIC\0" [10] | 42 version "01\0" [3]
 *   45 arch [3] | 48 uuid [16] | 64 created i64 | 72 modified i64
 *   80 descriptors free i64 | 88 descriptors total i64 | 96 descriptors offset i64
 *   104 descriptors size i64 | 112 data offset i64 | 120 data size i64
 *
 * Descriptor, 585 bytes each (pkg/sif/descriptor.go `rawDescriptor`):
 *   0 data type i32 | 4 used u8 | 5 id u32 | 9 group id u32 | 13 linked id u32
 *   17 offset i64 | 25 size i64 | 33 size with padding i64 | 41 created i64
 *   49 modified i64 | 57 uid i64 | 65 gid i64 | 73 name [128] | 201 extra [384]
 */

export const HEADER_SIZE = 128
export const DESCRIPTOR_SIZE = 585
export const LAUNCH_SCRIPT_SIZE = 32
export const MAGIC = 'SIF_MAGIC'
export const VERSION = '01'
export const NAME_SIZE = 128
export const EXTRA_SIZE = 384
/** Bytes of a signature object's entity field (the signer's fingerprint, zero-padded). */
export const ENTITY_SIZE = 256

/** Header field offsets. */
export const H = {
  launch: 0, magic: 32, version: 42, arch: 45, uuid: 48, created: 64, modified: 72,
  descriptorsFree: 80, descriptorsTotal: 88, descriptorsOffset: 96, descriptorsSize: 104,
  dataOffset: 112, dataSize: 120
} as const

/** Descriptor field offsets. */
export const D = {
  dataType: 0, used: 4, id: 5, groupId: 9, linkedId: 13, offset: 17, size: 25, sizeWithPadding: 33,
  created: 41, modified: 49, uid: 57, gid: 65, name: 73, extra: 201
} as const

/** Group ids and group links are stored with this bit pattern or'ed in; a bare mask is "no group". */
export const GROUP_MASK = 0xf0000000

/** Data object types (pkg/sif/sif.go `DataType`). */
export const DataType = {
  deffile: 0x4001,
  envVar: 0x4002,
  labels: 0x4003,
  partition: 0x4004,
  signature: 0x4005,
  genericJson: 0x4006,
  generic: 0x4007,
  cryptoMessage: 0x4008,
  sbom: 0x4009,
  ociRootIndex: 0x400a,
  ociBlob: 0x400b
} as const
export type DataTypeName = keyof typeof DataType

/** File system types of a partition (`FSType`). */
export const FsType = { squashfs: 1, ext3: 2, immutableObjects: 3, raw: 4, encryptedSquashfs: 5 } as const
export type FsTypeName = keyof typeof FsType

/** Partition types (`PartType`); `primarySystem` is the one a container runs. */
export const PartType = { system: 1, primarySystem: 2, data: 3, overlay: 4 } as const
export type PartTypeName = keyof typeof PartType

/** Signature hash types (`hashType`). */
export const HashType = { sha256: 1, sha384: 2, sha512: 3, blake2s: 4, blake2b: 5 } as const
export type HashTypeName = keyof typeof HashType

/** Architecture codes (pkg/sif/arch.go), by GOARCH, which is also the OCI architecture name. */
export const ARCH_CODES: Readonly<Record<string, string>> = {
  386: '01', amd64: '02', arm: '03', arm64: '04', ppc64: '05', ppc64le: '06', mips: '07', mipsle: '08',
  mips64: '09', mips64le: '10', s390x: '11', riscv64: '12', loong64: '13'
}
export const ARCH_UNKNOWN = '00'

/** Where the first descriptor sits, and how many descriptors, in files sylabs/sif creates (CreateContainer's defaults). */
export const DEFAULT_DESCRIPTORS_OFFSET = 4096
export const DEFAULT_DESCRIPTOR_CAPACITY = 48
/** Partitions are aligned to this in the data section (NewDescriptorInput's default). */
export const PARTITION_ALIGNMENT = 4096
/** What Apptainer writes as the launch script, so that `./image.sif` runs it. */
export const APPTAINER_LAUNCH_SCRIPT = '#!/usr/bin/env run-singularity\n'
/** Media type of the one layer of an ORAS SIF artifact (what `apptainer push oras://` writes). */
export const SIF_LAYER_MEDIA_TYPE = 'application/vnd.sylabs.sif.layer.v1.sif'
/** Config media type Apptainer gives that artifact. */
export const SIF_CONFIG_MEDIA_TYPE = 'application/vnd.sylabs.sif.config.v1+json'
/** Largest non-partition object (definition file, labels, JSON) read into memory. */
export const MAX_METADATA_OBJECT_SIZE = 16 * 1024 * 1024
