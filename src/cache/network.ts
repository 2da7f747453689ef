/**
 * The build cache over the peer network (protocols/cache.md): a builder
 * publishes its step-cache records as signed DHT records and provides their
 * layer blobs; another builder, before running a step, looks its key up,
 * keeps only records from signers its trust policy accepts as `builder`,
 * fetches the layer by digest (verified by src/transfer) and makes the step
 * snapshot from it (verified against the record's diffID). It plugs into
 * createBuilder as `remoteCache`.
 *
 * @example
 * ```ts
 * const net = createNetworkCache({ node, privateKey, store: local.content, db: local.db, transfer, trust: policy })
 * const builder = createBuilder({ ...init, remoteCache: net.remoteCache })
 * const result = await builder.build(plan, options)
 * await net.publish({ image: result.descriptor })   // or every record: net.publish()
 * ```
 */
import type { PrivateKey } from '@libp2p/interface'
import type { ContentStore, Digest } from '../content/index.ts'
import type { KilnDb } from '../db/index.ts'
import type { Descriptor } from '../oci/index.ts'
import { publishCacheRecord, resolveCacheRecord } from '../p2p/cache-records.ts'
import type { CacheTrust } from '../p2p/cache-records.ts'
import type { KilnNode } from '../p2p/index.ts'
import type { Transfer } from '../transfer/index.ts'
import { PUBLISH_CONCURRENCY } from './constants.ts'
import { selectCacheRecords } from './image.ts'
import { materializeSnapshot } from './snapshot.ts'
import type { CachedLayer, RemoteStepCache } from './step-cache.ts'

export interface NetworkCacheInit {
  node: KilnNode
  /** Signs published records: the node's key, whose peer id others trust as a builder. */
  privateKey: PrivateKey
  store: ContentStore
  db: KilnDb
  /** Serves and fetches layer blobs; its server must be started for others to fetch what this node publishes. */
  transfer: Pick<Transfer, 'fetch' | 'provide'>
  /** Whose records count (role `builder`); src/trust's TrustPolicy fits. */
  trust: CacheTrust
  /** This node's federation certificates, carried beside its records. */
  certificates?: unknown[]
  /** Bounds one lookup (records and providers); default 5 s. */
  lookupTimeoutMs?: number
  log?: (level: 'debug' | 'warn', message: string) => void
}

export interface NetworkCache {
  /** For createBuilder: looks a step key up on the network. */
  remoteCache: RemoteStepCache
  /**
   * Provides the layer blobs and publishes signed records for the store's
   * step cache: every record, or (`image`) those whose layers are in that
   * image. Records already published by this object are skipped.
   */
  publish: (options?: { image?: Descriptor, signal?: AbortSignal }) => Promise<{ published: number, storedOn: number }>
}

export function createNetworkCache (init: NetworkCacheInit): NetworkCache {
  const { node, store } = init
  const log = init.log ?? (() => {})
  const published = new Set<string>()

  const lookup = async (key: Digest, options: { snapshotsDir: string, signal?: AbortSignal }): Promise<CachedLayer | undefined> => {
    const record = await resolveCacheRecord(node, key, {
      trust: init.trust,
      timeoutMs: init.lookupTimeoutMs ?? 5_000,
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
      onSkip: (signer, reason) => { log('debug', `cache record for ${key} from ${signer} ignored: ${reason}`) }
    })
    if (record === undefined) return undefined
    const { layer, diffId, config } = record.payload
    if (config !== undefined) {
      log('warn', `cache record for ${key} from ${record.signer} changes the config, which this builder does not apply: ignored`)
      return undefined
    }
    const digest = layer.digest as Digest
    if (!await store.has(digest)) {
      // By digest, from whoever has it (the signer provides it): the transfer checks the bytes.
      await init.transfer.fetch(digest, { size: layer.size, providers: [record.signer], ...(options.signal !== undefined ? { signal: options.signal } : {}) })
    }
    const descriptor = { mediaType: layer.mediaType, digest, size: layer.size }
    const outcome = await materializeSnapshot(store, descriptor, diffId as Digest, options.snapshotsDir)
    if (outcome === 'unsupported') {
      log('debug', `cache layer ${digest} for ${key}: no snapshot (opaque dir, or not the record's diffID): the step runs`)
      return undefined
    }
    return { descriptor, diffId: diffId as Digest }
  }

  const publish: NetworkCache['publish'] = async (options = {}) => {
    const records = (await selectCacheRecords(init.db, store, options.image !== undefined ? { mode: 'min', image: options.image } : { mode: 'max' }))
      .filter(r => !published.has(r.key))
    let count = 0
    let storedOn = 0
    const queue = [...records]
    const worker = async (): Promise<void> => {
      for (let r = queue.shift(); r !== undefined; r = queue.shift()) {
        options.signal?.throwIfAborted()
        await init.transfer.provide(r.layer.digest, options.signal !== undefined ? { signal: options.signal } : {})
        const p = await publishCacheRecord(node, init.privateKey, { key: r.key, layer: r.layer, diffId: r.diffId }, {
          ...(init.certificates !== undefined ? { certificates: init.certificates } : {}),
          ...(options.signal !== undefined ? { signal: options.signal } : {})
        })
        published.add(r.key)
        count++
        storedOn += p.storedOn
      }
    }
    await Promise.all(Array.from({ length: Math.min(PUBLISH_CONCURRENCY, records.length) }, worker))
    return { published: count, storedOn }
  }

  return { remoteCache: { lookup }, publish }
}
