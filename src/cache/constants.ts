/**
 * Fixed parameters of the build cache.
 */

/** Step cache format version: bump to invalidate every cache entry when the layer format changes. */
export const STEP_CACHE_VERSION = 1

/** Records published at once by the network cache (each is a DHT put and two provides). */
export const PUBLISH_CONCURRENCY = 4
