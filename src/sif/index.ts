/**
 * SIF, the Singularity Image Format that Apptainer runs, as sylabs/sif
 * (pkg/sif, spec version 01) defines it: a 128-byte global header, a table
 * of descriptors, and the data objects they name (definition file, labels,
 * partitions, signatures...), in groups. Byte layout in ./constants.ts,
 * terms (object, group, primary partition) in ./format.ts; docs/sif.md.
 *
 * What kiln does with it:
 * - exportSif: an image from the store written as a SIF whose primary
 *   partition is a squashfs of the image (`--output type=sif`);
 * - importSif: a SIF's primary partition read into the store as a
 *   single-layer image (`Bootstrap: localimage`, `oras`, `library`);
 * - readSif / writeSif: the container format itself, for any objects.
 *
 * @example
 * ```ts
 * const { descriptor } = await importSif(store, 'alpine.sif')
 * await exportSif(store, descriptor, 'out.sif', { sourceDateEpoch: 0 })
 * const sif = await readSif('out.sif')
 * console.log(sif.header.id, sif.objects.map(o => o.dataType))
 * ```
 */
export * from './errors.ts'
export {
  DataType, FsType, PartType, HashType, SIF_LAYER_MEDIA_TYPE, SIF_CONFIG_MEDIA_TYPE, APPTAINER_LAUNCH_SCRIPT
} from './constants.ts'
export type { DataTypeName, FsTypeName, PartTypeName, HashTypeName } from './constants.ts'
export { decodeHeader, decodeDescriptor, encodeHeader, encodeDescriptor, archCode } from './format.ts'
export type { SifHeader, SifDescriptor, PartitionInfo, SignatureInfo } from './format.ts'
export { readSif, readObject, primaryPartition } from './read.ts'
export type { SifFile } from './read.ts'
export { writeSif } from './write.ts'
export type { SifObjectInput, WriteSifInit } from './write.ts'
export { exportSif, sifIdFor } from './from-image.ts'
export type { SifExportOptions, WrittenSif } from './from-image.ts'
export { importSif } from './to-image.ts'
export type { SifImportOptions, ImportedSif } from './to-image.ts'
export { dockerEnvScript, ociRunscript, shellQuote } from './apptainer-metadata.ts'
export {
  SIF_TAG_SUFFIX, SIF_LAYER_TITLE, SOURCE_ANNOTATION, SIF_ARTIFACT_CONFIG, sifArtifactSubject, writeArtifactSif, sifArtifactManifest
} from './oras-artifact.ts'
