/**
 * Keeping an agent's store in bounds while it runs: the quota
 * (`store.quota`) enforced after each job and every QUOTA_INTERVAL_MS, one
 * run at a time; store size and blob count measured when metrics are
 * scraped; and build leases, so that what a build writes or reads is never
 * evicted under it.
 *
 * @example
 * ```ts
 * const upkeep = startStoreUpkeep({ store, db, quota: parseByteSize('500GiB'), metrics, log })
 * await upkeep.enforce()        // after a job; coalesces with a run in progress
 * await upkeep.stop()
 * ```
 */
import type { Logger } from 'pino'
import type { ContentStore } from '../src/content/index.ts'
import type { KilnDb } from '../src/db/index.ts'
import { enforceQuota, untracked } from '../src/content/quota.ts'
import type { DerivedCache, QuotaResult } from '../src/content/quota.ts'
import type { Metrics } from '../src/metrics/index.ts'
import { blobChildren } from '../src/oci/index.ts'

/** How often the quota is enforced besides after each job. */
export const QUOTA_INTERVAL_MS = 10 * 60_000

export interface StoreUpkeepInit {
  store: ContentStore
  db: KilnDb
  /** Bytes; absent: no quota, only the metrics. */
  quota?: number
  /** Default QUOTA_INTERVAL_MS. */
  intervalMs?: number
  /** Blobs younger than this are kept (enforceQuota's default when absent). */
  graceMs?: number
  /** The builder's snapshots and unpacked bases, bounded by the same quota (src/builder/snapshots.ts). */
  derived?: DerivedCache
  metrics?: Metrics
  log?: Logger
}

export interface StoreUpkeep {
  /**
   * Enforces the quota now, or, if a run is in progress, once more after it
   * (calls made meanwhile share that one run). Resolves with its result;
   * undefined without a quota or after stop(). Never rejects: a failed run
   * is logged.
   */
  enforce: () => Promise<QuotaResult | undefined>
  /** Stops the timer and the metrics hook, and waits for a run in progress. */
  stop: () => Promise<void>
}

export function startStoreUpkeep (init: StoreUpkeepInit): StoreUpkeep {
  const { store, db, quota, metrics, log } = init
  const children = blobChildren(untracked(store))
  let running: Promise<QuotaResult | undefined> | undefined
  let next: Promise<QuotaResult | undefined> | undefined
  let stopped = false

  const runOnce = async (): Promise<QuotaResult | undefined> => {
    if (quota === undefined || stopped) return undefined
    try {
      const r = await enforceQuota({ store, db, quota, children, ...(init.graceMs !== undefined ? { graceMs: init.graceMs } : {}), ...(init.derived !== undefined ? { derived: init.derived } : {}) })
      if (r.bytesFreed > 0) {
        metrics?.inc('kiln_store_evicted_bytes_total', {}, r.bytesFreed)
        log?.info({ evicted: r.evicted.length, buildCacheEvicted: r.derivedEvicted.length, bytesFreed: r.bytesFreed, after: r.after, quota }, 'store trimmed to its quota')
      }
      if (r.overQuota) log?.warn({ after: r.after, quota, protectedBytes: r.protectedBytes }, 'store over its quota: the rest is pinned, in use or fresh')
      return r
    } catch (err) {
      log?.warn({ err }, 'enforcing the store quota failed')
      return undefined
    }
  }

  const enforce = async (): Promise<QuotaResult | undefined> => {
    if (running === undefined) {
      running = runOnce().finally(() => { running = undefined })
      return await running
    }
    // One run at a time: a request during a run gets one more run after it.
    next ??= running.then(async () => { next = undefined; return await enforce() })
    return await next
  }

  const timer = quota === undefined ? undefined : setInterval(() => { void enforce() }, init.intervalMs ?? QUOTA_INTERVAL_MS)
  timer?.unref()

  // Read when scraped: a walk of the store is cheaper than tracking every write and delete.
  const offCollect = metrics?.onCollect(async () => {
    let bytes = 0
    let blobs = 0
    for await (const b of untracked(store).walk()) { bytes += b.size; blobs++ }
    metrics.set('kiln_store_bytes', {}, bytes)
    metrics.set('kiln_store_blobs', {}, blobs)
    metrics.set('kiln_store_quota_bytes', {}, quota ?? 0)
  })

  return {
    enforce,
    stop: async () => {
      stopped = true
      clearInterval(timer)
      offCollect?.()
      await next
      await running
    }
  }
}

