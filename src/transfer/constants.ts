/** Local tuning of blob exchange; wire limits are in protocols/constants.ts (blob.md). */

const MiB = 1024 * 1024

/** Range asked of one provider at a time (blob.md §5); under BLOB_MAX_RANGE_BYTES. */
export const DEFAULT_CHUNK_SIZE = 4 * MiB
/** Ranges (streams) in flight per provider: while one waits for its next request to arrive, the others keep the connection busy. */
export const DEFAULT_PER_PEER_CONCURRENCY = 4
/** Most providers pulled from at once. */
export const DEFAULT_MAX_PEERS = 8
/** Consecutive failures after which a provider is dropped for this fetch. */
export const MAX_PEER_FAILURES = 3
/** Chunks written between two partial.sync() calls, bounding what a crash loses. */
export const SYNC_EVERY_CHUNKS = 16
/** Bound on the provider search that runs beside the fetch. */
export const FIND_PROVIDERS_TIMEOUT_MS = 15_000
/** Waiting this long with no provider at all fails the fetch. */
export const NO_PROVIDER_TIMEOUT_MS = 20_000
/** Largest blob fetched when the caller gives no size and a peer claims one. */
export const DEFAULT_MAX_BLOB_SIZE = 64 * 1024 * MiB
/** Blobs parsed as manifests or indexes when following an image graph. */
export const MAX_MANIFEST_BYTES = 4 * MiB

/**
 * Longest a transfer's lease on the blobs it writes lasts if the process
 * dies before releasing it (a live transfer releases it when it ends).
 */
export const TRANSFER_LEASE_MS = 6 * 3600_000
