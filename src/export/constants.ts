/**
 * Limits and defaults of the exporters. The exec exporter's limits are part
 * of the external exporter protocol (protocols/exporter.md §4) and live there.
 */

/** Longest `--output` value accepted, in characters. */
export const MAX_OUTPUT_SPEC_LENGTH = 8192
/** Most `arg=` values an exec exporter may be given. */
export const MAX_EXEC_ARGS = 64
/** Most names (tags) one export may write. */
export const MAX_EXPORT_NAMES = 64
/** Index nesting followed when flattening an image for docker-archive or a site. */
export const MAX_INDEX_DEPTH = 4
/** Default S3 region when neither the spec nor the environment names one. */
export const DEFAULT_S3_REGION = 'us-east-1'
/** Blobs uploaded to S3 at once. */
export const S3_UPLOAD_CONCURRENCY = 4
/** Name of the static site's sidecar map (repositories, tags, media types). */
export const SITE_STATE_FILE = 'kiln-site.json'
/** Name of the generated nginx include. */
export const SITE_NGINX_FILE = 'kiln-nginx.conf'
/** Largest sidecar map accepted when reading a site back. */
export const MAX_SITE_STATE_SIZE = 32 * 1024 * 1024
