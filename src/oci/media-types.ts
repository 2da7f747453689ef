/**
 * Media types of the OCI image spec and of Docker image manifest v2 schema 2,
 * which registries and tools still emit and kiln must read.
 */

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json'
export const OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar'
export const OCI_LAYER_TAR_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip'
export const OCI_LAYER_TAR_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd'
/** Deprecated by OCI image-spec 1.1 but still found in Windows images. */
export const OCI_LAYER_NONDIST_TAR = 'application/vnd.oci.image.layer.nondistributable.v1.tar'
export const OCI_LAYER_NONDIST_TAR_GZIP = 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip'
export const OCI_LAYER_NONDIST_TAR_ZSTD = 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd'

export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json'
export const DOCKER_LAYER_TAR_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip'
/** Not in the Docker spec, but emitted by containers/image for uncompressed layers. */
export const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar'
export const DOCKER_LAYER_FOREIGN_TAR_GZIP = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip'

export type LayerCompression = 'none' | 'gzip' | 'zstd'

const INDEX_TYPES: ReadonlySet<string> = new Set([OCI_INDEX, DOCKER_MANIFEST_LIST])
const MANIFEST_TYPES: ReadonlySet<string> = new Set([OCI_MANIFEST, DOCKER_MANIFEST])
const CONFIG_TYPES: ReadonlySet<string> = new Set([OCI_CONFIG, DOCKER_CONFIG])

const LAYER_COMPRESSION: ReadonlyMap<string, LayerCompression> = new Map([
  [OCI_LAYER_TAR, 'none'],
  [OCI_LAYER_TAR_GZIP, 'gzip'],
  [OCI_LAYER_TAR_ZSTD, 'zstd'],
  [OCI_LAYER_NONDIST_TAR, 'none'],
  [OCI_LAYER_NONDIST_TAR_GZIP, 'gzip'],
  [OCI_LAYER_NONDIST_TAR_ZSTD, 'zstd'],
  [DOCKER_LAYER_TAR, 'none'],
  [DOCKER_LAYER_TAR_GZIP, 'gzip'],
  [DOCKER_LAYER_FOREIGN_TAR_GZIP, 'gzip']
])

const FOREIGN_TYPES: ReadonlySet<string> = new Set([
  OCI_LAYER_NONDIST_TAR, OCI_LAYER_NONDIST_TAR_GZIP, OCI_LAYER_NONDIST_TAR_ZSTD, DOCKER_LAYER_FOREIGN_TAR_GZIP
])

/** An image index (OCI) or manifest list (Docker). */
export function isIndex (mediaType: string | undefined): boolean {
  return mediaType !== undefined && INDEX_TYPES.has(mediaType)
}

/** A single-platform image manifest (OCI or Docker schema 2). */
export function isManifest (mediaType: string | undefined): boolean {
  return mediaType !== undefined && MANIFEST_TYPES.has(mediaType)
}

export function isConfig (mediaType: string | undefined): boolean {
  return mediaType !== undefined && CONFIG_TYPES.has(mediaType)
}

/** A filesystem layer kiln can unpack (tar, gzip or zstd; distributable or foreign). */
export function isLayer (mediaType: string | undefined): boolean {
  return mediaType !== undefined && LAYER_COMPRESSION.has(mediaType)
}

/** Foreign / non-distributable layers: registries may refuse them and they may carry `urls`. */
export function isForeignLayer (mediaType: string | undefined): boolean {
  return mediaType !== undefined && FOREIGN_TYPES.has(mediaType)
}

/** The compression a layer media type declares, or undefined when it is not a known layer type. */
export function layerCompression (mediaType: string): LayerCompression | undefined {
  return LAYER_COMPRESSION.get(mediaType)
}

/** The OCI layer media type for a compression. */
export function ociLayerMediaType (compression: LayerCompression): string {
  switch (compression) {
    case 'none': return OCI_LAYER_TAR
    case 'gzip': return OCI_LAYER_TAR_GZIP
    case 'zstd': return OCI_LAYER_TAR_ZSTD
  }
}
