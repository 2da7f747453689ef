/**
 * Limits and fixed parameters of the OCI module. Each limit guards memory
 * against hostile input: anything larger is refused with a named error.
 */

/** Largest manifest or index accepted (the distribution spec lets registries refuse above 4 MiB). */
export const MAX_MANIFEST_SIZE = 4 * 1024 * 1024

/** Largest image config accepted; configs carry history and labels and can exceed manifests. */
export const MAX_CONFIG_SIZE = 8 * 1024 * 1024

/** Largest index.json / manifest.json / oci-layout file read from a layout or archive. */
export const MAX_LAYOUT_FILE_SIZE = MAX_MANIFEST_SIZE

/** Largest PAX extended header or GNU long name/link record in a tar stream. */
export const MAX_TAR_EXTENDED_HEADER_SIZE = 1024 * 1024

/** Longest path (or link target) taken from a tar entry, in bytes; Linux PATH_MAX. */
export const MAX_TAR_PATH_LENGTH = 4096

/** Deepest chain of symlinks followed when resolving a hardlink or a target inside the root. */
export const MAX_SYMLINK_HOPS = 40

/** Fixed compression levels: part of what makes a written layer reproducible. */
export const GZIP_LEVEL = 6
export const ZSTD_LEVEL = 3

/**
 * A layer is compressed in blocks of this many tar bytes, each an
 * independent gzip member (RFC 1952 section 2.2) or zstd frame (RFC 8878
 * section 3.1), concatenated. Blocks compress in parallel on libuv's thread
 * pool; every reader (Go's gzip.Reader, containerd, skopeo, podman, GNU tar,
 * node:zlib) reads the concatenation as one stream. The size is fixed: where
 * the cuts fall is part of what makes the bytes reproducible.
 */
export const COMPRESSION_BLOCK_SIZE = 1024 * 1024

/** Most blocks being compressed at once (bounded by the thread pool's size). */
export const MAX_COMPRESSION_PARALLEL = 4

/** Streaming chunk size for hashing and copying. */
export const COPY_CHUNK_SIZE = 1024 * 1024

/** `oci-layout` file content version (image-layout spec). */
export const OCI_LAYOUT_VERSION = '1.0.0'

/** Annotation that names a manifest in an image layout's index.json. */
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name'

/** Annotation containerd/buildkit put beside ref.name with the full image name. */
export const ANNOTATION_IMAGE_NAME = 'io.containerd.image.name'
