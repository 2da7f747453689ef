/**
 * Blob exchange over the peer network: serve the local store on
 * `/kiln/blob/1.0.0`, announce blobs on the DHT under CIDv1(raw, sha2-256)
 * of their digest, and fetch blobs (and whole image graphs) from several
 * providers at once, verified, resumable, with liars banned for the session.
 * Wire format: protocols/blob.md.
 *
 * @example
 * ```ts
 * const transfer = createTransfer({ node, store })
 * await transfer.start()                       // serve the store
 * await transfer.provide(digest)               // announce a blob we hold
 * await transfer.fetch(digest, { onProgress }) // get one from whoever has it
 * await transfer.stop()
 * ```
 */
import type { Logger } from 'pino'
import type { ContentStore, Digest, Leases } from '../content/index.ts'
import { digestToCid } from '../content/index.ts'
import type { Metrics } from '../metrics/index.ts'
import type { KilnNode } from '../p2p/index.ts'
import { createBlobServer } from './blob-server.ts'
import { TRANSFER_LEASE_MS } from './constants.ts'
import type { BlobServerStats } from './blob-server.ts'
import { fetchBlob } from './fetcher.ts'
import type { FetchBlobOptions, FetchResult } from './fetcher.ts'
import { pullGraph } from './graph.ts'
import type { PullOptions, PullResult } from './graph.ts'

export type { FetchBlobOptions, FetchProgress, FetchResult } from './fetcher.ts'
export type { PullOptions, PullResult } from './graph.ts'
export type { BlobServerStats } from './blob-server.ts'
export { fetchBlob } from './fetcher.ts'
export { pullGraph } from './graph.ts'
export { createBlobServer } from './blob-server.ts'
export { BlobSession } from './blob-client.ts'
export { readBlobRanges } from './range-reader.ts'
export type { ReadRangesOptions } from './range-reader.ts'
export * from './errors.ts'

export interface TransferInit {
  node: KilnNode
  store: ContentStore
  log?: Logger
  /** Counts bytes served and fetched by peer, and provider lookups; default none. */
  metrics?: Metrics
  /**
   * Leases of the store's database: fetch and pull hold a lease on every
   * blob they write until they return, so quota eviction and `kiln gc` never
   * take part of a graph being written. Default none (nothing is held).
   */
  leases?: Leases
}

export interface Transfer {
  /** Starts serving the store; safe to call twice. */
  start: () => Promise<void>
  /** Stops serving; fetches in progress are not affected. */
  stop: () => Promise<void>
  /** Announces on the DHT that this node holds a blob. */
  provide: (digest: Digest, options?: { signal?: AbortSignal }) => Promise<void>
  /** Announces every blob in the store. */
  provideAll: (options?: { signal?: AbortSignal }) => Promise<number>
  fetch: (digest: Digest, options?: FetchBlobOptions) => Promise<FetchResult>
  pull: (root: Digest, options?: PullOptions) => Promise<PullResult>
  stats: () => BlobServerStats
}

export function createTransfer (init: TransferInit): Transfer {
  const server = createBlobServer({ node: init.node, store: init.store, log: init.log, ...(init.metrics !== undefined ? { metrics: init.metrics } : {}) })
  const metrics = init.metrics !== undefined ? { metrics: init.metrics } : {}
  /** Runs work holding a lease that `hold` adds digests to; the lease goes when the work ends. */
  const leased = async <T>(work: (hold: (digest: Digest) => void) => Promise<T>): Promise<T> => {
    const leases = init.leases
    if (leases === undefined) return await work(() => {})
    const lease = leases.create('transfer', TRANSFER_LEASE_MS)
    try {
      return await work(digest => { leases.add(lease, [digest]) })
    } finally {
      leases.release(lease)
    }
  }
  // Peers that sent bad bytes stay banned for the life of this Transfer.
  const banned = new Set<string>()
  const provide = async (digest: Digest, options: { signal?: AbortSignal } = {}): Promise<void> => {
    for await (const _ of init.node.services.dht.provide(digestToCid(digest), { signal: options.signal })) { /* drain */ }
  }
  return {
    start: server.start,
    stop: server.stop,
    provide,
    async provideAll (options = {}) {
      let n = 0
      for await (const { digest } of init.store.walk()) {
        // Aborted: stop here, rather than fail (and log) once per blob left.
        options.signal?.throwIfAborted()
        await provide(digest, options).catch((err: Error) => init.log?.warn({ err, digest }, 'provide failed'))
        n++
      }
      return n
    },
    fetch: async (digest, options = {}) => await leased(async hold => {
      hold(digest)
      return await fetchBlob(init.node, init.store, digest, { banned, ...metrics, ...options })
    }),
    pull: async (root, options = {}) => await leased(async hold => {
      const outer = options.hold
      return await pullGraph(init.node, init.store, root, { banned, ...metrics, ...options, hold: d => { hold(d); outer?.(d) } })
    }),
    stats: server.stats
  }
}
