/**
 * The OCI image model: media types, zod schemas of manifests / indexes /
 * configs, platforms, image references, the image graph, OCI image layouts
 * and archives, and tar layers (safe extraction, deterministic writing).
 *
 * Terms:
 * - descriptor: `{ mediaType, digest, size }` naming a blob in the content store.
 * - manifest: one platform's image: a config blob and an ordered list of layers.
 * - index: a list of manifests (one per platform) or other indexes.
 * - layer: a tar (plain, gzip or zstd) of filesystem changes; its diffID is
 *   the digest of the uncompressed tar, its digest that of the blob as stored.
 * - root: the manifest or index a ref or a layout entry points at.
 *
 * Bytes of manifests and configs are stored and served as they came; the
 * parsed values are for reading only.
 *
 * Contracts: every byte from a layout, archive, layer or peer is parsed with
 * a limit (constants.ts) and a zod schema; errors are one class per condition
 * (errors.ts; branch on `name`). importImage is all-or-nothing for the blobs
 * it adds. extractLayer never writes outside its target, root or not (see
 * layer/extract.ts for the policy on links, devices and setuid bits).
 * writeLayer / writeLayerFromDir are deterministic (see layer/write.ts).
 *
 * @example
 * ```ts
 * const roots = await importImage(store, parseImageRef('oci:./layout:base'))
 * await unpackImage(store, roots[0].descriptor, './rootfs', { platform: hostPlatform() })
 * const layer = await writeLayerFromDir(store, './changes', { compression: 'gzip' })
 * ```
 */
export * from './constants.ts'
export * from './errors.ts'
export * from './media-types.ts'
export * from './schemas.ts'
export * from './platform.ts'
export * from './reference.ts'
export { aliasedRefStore } from './ref-aliases.ts'
export { extractLayer, WHITEOUT_PREFIX, OPAQUE_WHITEOUT } from './layer/extract.ts'
export { DirTree, InRootPathError, resolveInRoot } from './layer/in-root.ts'
export type { InRootFailure, Resolved, ResolveOptions, RootTree, TreeEntry } from './layer/in-root.ts'
export { SafeRoot, cleanComponents } from './layer/safe-root.ts'
export type { ExtractOptions, ExtractResult, ExtractWarning } from './layer/extract.ts'
export { encodeTar, listTree, orderHardlinks, resolveSourceDateEpoch, writeLayer, writeLayerFromDir } from './layer/write.ts'
export type { EntryOwner, LayerEntry, WriteLayerOptions, WrittenLayer } from './layer/write.ts'
export { detectCompression, decompress, decompressDetected, compress } from './layer/compression.ts'
export { readTar } from './layer/tar-reader.ts'
export type { TarEntry } from './layer/tar-reader.ts'
export type { TarHeader, TarEntryType } from './layer/tar-header.ts'
export { blobChildren, children, childrenOf, collectImage, hasChildren, parseDescribed, walkImage } from './graph.ts'
export type { Child, WalkOptions, WalkedDescriptor } from './graph.ts'
export { writeOciLayout, readOciLayout, selectLayoutEntries, mergeIndexEntries } from './layout.ts'
export type { NamedImage } from './layout.ts'
export { readOciArchive, readDockerArchive, writeOciArchive, scanArchive } from './archive.ts'
export type { ArchiveIndex, ArchiveMember, OpenedArchive, DockerArchiveSelection } from './archive.ts'
export { layoutBlobSource } from './blob-source.ts'
export type { BlobLocation, BlobSource } from './blob-source.ts'
export { importImage, importFromSource, openImportSource } from './import.ts'
export type { ImportOptions, ImportSource } from './import.ts'
export { exportImage, exportOptionsFromRef } from './export.ts'
export type { ExportFormat, ExportOptions } from './export.ts'
export { unpackImage, resolveImage } from './layer/unpack.ts'
export type { UnpackOptions, ResolvedImage } from './layer/unpack.ts'
