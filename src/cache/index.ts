/**
 * The build cache, in one place (docs/architecture.md, "src/cache"):
 * - the *step cache*: step key -> the layer that step produced, in the
 *   store's database (./step-cache.ts, with `stepKey`);
 * - *step snapshots*: the directories under the builder's
 *   `<work dir>/snapshots` that later steps stack on, named by
 *   ./snapshot-names.ts, made from a cache layer by ./snapshot.ts;
 * - *cache images*: the step cache packed as an OCI artifact that any
 *   exporter writes, and imported back (./image.ts, protocols/exporter.md §7);
 * - the *network cache*: step-cache records published as signed DHT records
 *   and looked up before a step runs (./network.ts, protocols/cache.md). The
 *   record format and the DHT's checks of it are src/p2p's
 *   (`p2p/cache-records.ts`), beside the other two DHT record kinds.
 *
 * The builder asks a `RemoteStepCache` for steps its own cache lacks; the
 * network cache is one.
 */
export { createStepCache, stepKey, stepCacheReferences } from './step-cache.ts'
export type { CachedLayer, RemoteStepCache, StepCache, StepCacheRecord } from './step-cache.ts'
export { createUrlCache } from './url-cache.ts'
export type { UrlCache, UrlRecord } from './url-cache.ts'
export { keySnapshotName, layerSnapshotName, parseSnapshotName } from './snapshot-names.ts'
export type { SnapshotName } from './snapshot-names.ts'
export { materializeSnapshot } from './snapshot.ts'
export type { SnapshotOutcome } from './snapshot.ts'
export { BUILD_CACHE_MEDIA_TYPE, createCacheImage, fetchCacheImage, importCacheImage, selectCacheRecords } from './image.ts'
export type { BuildCacheRecord, CacheExportOptions, CacheImportOptions, CacheImportResult, CacheSourceComponents } from './image.ts'
export { createNetworkCache } from './network.ts'
export type { NetworkCache, NetworkCacheInit } from './network.ts'
export { CacheImageError } from './errors.ts'
