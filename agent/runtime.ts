/**
 * The agent's network half: joins the peer network, advertises its
 * capability record, serves and announces its store, and, given `jobs`,
 * takes signed build jobs over `/kiln/job/1.0.0` (agent/jobs) and builds
 * them with the rootless builder.
 *
 * @example
 * ```ts
 * const agent = await startAgent({ node, privateKey, store, describe: () => detectCapabilities() })
 * process.once('SIGTERM', () => { void agent.stop() })
 * ```
 */
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { PrivateKey } from '@libp2p/interface'
import { createLeases } from '../src/content/index.ts'
import type { ContentStore, RefStore } from '../src/content/index.ts'
import type { KilnDb } from '../src/db/index.ts'
import type { Metrics } from '../src/metrics/index.ts'
import { createCapabilityAdvertiser } from '../src/p2p/index.ts'
import type { CapabilityAdvertiser, CapabilityDescription, KilnNode } from '../src/p2p/index.ts'
import { createLibp2pJobTransport } from '../src/jobs/index.ts'
import type { JobTransport } from '../src/jobs/index.ts'
import { createTransfer } from '../src/transfer/index.ts'
import type { Transfer } from '../src/transfer/index.ts'
import { createDbReplayCache } from '../src/trust/index.ts'
import type { TrustPolicy } from '../src/trust/index.ts'
import { createAgentJobStore, createJobAgent, createNetworkBaseSource, createNetworkContextSource, createRecipeBuilder } from './jobs/index.ts'
import type { BuildOutput, JobAgent, JobAgentStopOptions, JobBuilder } from './jobs/index.ts'
import { createNetworkCache } from '../src/cache/index.ts'
import type { Sandbox } from '../src/builder/index.ts'
import type { DerivedCache } from '../src/content/quota.ts'
import { createBuildLeases } from '../src/content/index.ts'
import { startStoreUpkeep } from './store-upkeep.ts'
import { followRelayRenewals } from './relay-renewal.ts'
import type { StoreUpkeep } from './store-upkeep.ts'

/**
 * After a drain in which builds finished, the store is served until no blob
 * request came for this long (within the drain deadline): their requesters
 * fetch the images right after the results.
 */
export const SERVE_AFTER_DRAIN_IDLE_MS = 5_000

/** How long a built image is held for its requester: long enough to stop, resume and fetch. */
export const RESULT_LEASE_MS = 7 * 24 * 3600_000

/**
 * How long a finished build waits for its image to be announced in the
 * DHT before the result is sent anyway (protocols/job.md §5, step 5): a
 * `kiln pull` right after the job then finds a provider. The announcement
 * goes on in the background after that, for up to RESULT_ANNOUNCE_MS.
 * Short: a requester waits this long for its result when the DHT is slow.
 */
export const RESULT_ANNOUNCE_WAIT_MS = 5_000
const RESULT_ANNOUNCE_MS = 60_000

/** What the agent needs to take build jobs. */
export interface AgentJobsInit {
  /** The data dir's database and refs (job journal, replay cache, step cache, base images). */
  db: KilnDb
  refs: RefStore
  /** The data dir: builds work under `build/`, job contexts are unpacked under `jobs/`. */
  dataDir: string
  policy: TrustPolicy
  /** This agent's membership certificates, presented with offers and results. */
  certs: unknown[]
  platforms: string[]
  capabilities?: string[]
  /** Builds at once; default 1. */
  concurrency?: number
  allowNetwork?: boolean
  institution?: string
  /** Instead of the rootless builder (tests). */
  builder?: JobBuilder
  /** The sandbox the rootless builder runs steps in; default the one probing picks on first use. */
  sandbox?: Sandbox
  /** Why jobs of other peers are declined (the sandbox cannot isolate steps); see JobAgentInit.othersRefused. */
  othersRefused?: string
  /**
   * Share the build cache over the network (protocols/cache.md): publish the
   * step-cache records of each build, and reuse layers of builders the trust
   * policy accepts as `builder` instead of running their steps. Default true.
   */
  networkCache?: boolean
  /**
   * Pull a base a job pins from the registry its ref names (by digest) when
   * no peer provides it (protocols/job.md §3.1). Default false.
   */
  baseRegistries?: boolean
  heartbeatMs?: number
}

export interface AgentInit {
  node: KilnNode
  privateKey: PrivateKey
  store: ContentStore
  describe: () => CapabilityDescription | Promise<CapabilityDescription>
  log?: Logger
  /** Capability record validity; default protocols' 30 min. */
  ttlMs?: number
  refreshMs?: number
  /** Announce every blob already in the store at start; default true. */
  provideStore?: boolean
  /** Take build jobs; absent: the agent only advertises and serves. */
  jobs?: AgentJobsInit
  /** Jobs, transfers, DHT lookups and store size for the metrics endpoint; default none. */
  metrics?: Metrics
  /**
   * The store's database: with it, transfers and builds lease what they
   * write, and `quota` is enforced (./store-upkeep.ts). Default: jobs.db.
   */
  db?: KilnDb
  /** store.quota in bytes: enforced after each job and every 10 minutes. */
  quota?: number
  /** The builder's snapshots and unpacked bases, bounded by the same quota (src/builder/snapshots.ts). */
  derived?: DerivedCache
}

export interface Agent {
  readonly node: KilnNode
  readonly transfer: Transfer
  readonly advertiser: CapabilityAdvertiser
  /** The job side, when started with `jobs`. */
  readonly jobs?: JobAgent
  /**
   * The node's job transport, when started with `jobs`: another service of
   * the process that sends or receives job frames (the gateway's network
   * builds under `kiln up`) uses this one, since the node has one handler
   * for the job protocol.
   */
  readonly jobTransport?: JobTransport
  /** Quota enforcement and store metrics, when started with a db. */
  readonly upkeep?: StoreUpkeep
  /** Stops taking jobs (running ones may finish within `drainMs`), advertising, serving and the node. Safe to call twice. */
  stop: (options?: JobAgentStopOptions) => Promise<void>
}

export async function startAgent (init: AgentInit): Promise<Agent> {
  const db = init.db ?? init.jobs?.db
  const leases = db !== undefined ? createLeases(db) : undefined
  const transfer = createTransfer({
    node: init.node, store: init.store, log: init.log,
    ...(init.metrics !== undefined ? { metrics: init.metrics } : {}),
    ...(leases !== undefined ? { leases } : {})
  })
  await transfer.start()
  const advertiser = createCapabilityAdvertiser({
    node: init.node, privateKey: init.privateKey, describe: init.describe, ttlMs: init.ttlMs, refreshMs: init.refreshMs, log: init.log
  })
  // The first publication waits for a first peer (the DHT holds queries until its table has one),
  // so it runs in the background; stop() aborts it.
  const advertising = advertiser.start()
  const providing = init.provideStore === false
    ? Promise.resolve()
    : transfer.provideAll().then(n => init.log?.info({ blobs: n }, 'store announced'), (err: Error) => init.log?.warn({ err }, 'announcing the store failed'))
  // Reached through a relay that restarted: announced again once the reservation is renewed.
  const stopFollowingRelays = followRelayRenewals({ node: init.node, advertiser, transfer, provideStore: init.provideStore !== false, ...(init.log !== undefined ? { log: init.log } : {}) })
  const upkeep = db !== undefined
    ? startStoreUpkeep({ store: init.store, db, ...(init.quota !== undefined ? { quota: init.quota } : {}), ...(init.derived !== undefined ? { derived: init.derived } : {}), ...(init.metrics !== undefined ? { metrics: init.metrics } : {}), ...(init.log !== undefined ? { log: init.log } : {}) })
    : undefined
  const jobs = init.jobs !== undefined ? await startJobs(init, init.jobs, transfer, upkeep) : undefined
  let stopping: Promise<void> | undefined
  return {
    node: init.node,
    transfer,
    advertiser,
    ...(jobs !== undefined ? { jobs: jobs.agent, jobTransport: jobs.transport } : {}),
    ...(upkeep !== undefined ? { upkeep } : {}),
    stop: async (options) => {
      stopping ??= (async () => {
        const deadline = Date.now() + (options?.drainMs ?? 0)
        const building = jobs?.agent.status().some(j => !['succeeded', 'failed', 'cancelled'].includes(j.state)) === true
        await jobs?.stop(options)
        if (building) await untilServingIdle(transfer, deadline, options?.signal)
        await upkeep?.stop()
        // Not awaited before the advertiser stops: that ends a publication the renewal may be waiting on.
        const following = stopFollowingRelays()
        await advertiser.stop()
        await following
        await advertising
        await transfer.stop()
        await init.node.stop()
        await providing
      })()
      await stopping
    }
  }
}

/** Resolves once the blob server has had no request for SERVE_AFTER_DRAIN_IDLE_MS, or at the deadline. */
async function untilServingIdle (transfer: Transfer, deadline: number, signal?: AbortSignal): Promise<void> {
  let seen = transfer.stats().requests
  let quietSince = Date.now()
  while (Date.now() < deadline && Date.now() - quietSince < SERVE_AFTER_DRAIN_IDLE_MS && signal?.aborted !== true) {
    await new Promise(resolve => setTimeout(resolve, 200))
    const now = transfer.stats().requests
    if (now !== seen) { seen = now; quietSince = Date.now() }
  }
}

async function startJobs (init: AgentInit, j: AgentJobsInit, transfer: Transfer, upkeep: StoreUpkeep | undefined): Promise<{ agent: JobAgent, transport: JobTransport, stop: (options?: JobAgentStopOptions) => Promise<void> }> {
  const log = init.log?.child({ component: 'jobs' })
  const say = (level: 'info' | 'warn', message: string): void => { log?.[level](message) }
  const transport = createLibp2pJobTransport({ node: init.node, log: (level, message) => { log?.[level](message) } })
  await transport.start()
  const leases = createLeases(j.db)
  // What a build reads and writes is leased until it returns, so the quota never evicts it mid-build.
  const building = createBuildLeases(init.store, leases)
  // Whose cache records count follows the job policy, also after a reload (SIGHUP).
  let cachePolicy = j.policy
  const networkCache = j.builder === undefined && j.networkCache !== false
    ? createNetworkCache({
      node: init.node,
      privateKey: init.privateKey,
      store: building.store,
      db: j.db,
      transfer,
      trust: { allows: async (peer, role, certs) => await cachePolicy.allows(peer, role, certs) },
      certificates: j.certs,
      log: (level, message) => { log?.[level](message) }
    })
    : undefined
  const inner = j.builder ?? createRecipeBuilder({
    store: building.store, db: j.db, refs: j.refs, workDir: join(j.dataDir, 'build'),
    ...(networkCache !== undefined ? { remoteCache: networkCache.remoteCache } : {}),
    ...(j.sandbox !== undefined ? { sandbox: j.sandbox } : {}),
    // Within the cores: jobs run side by side up to `concurrency`, so each takes its share of them for its stages.
    parallelStages: Math.max(1, Math.floor(availableParallelism() / (j.concurrency ?? 1)))
  })
  /**
   * Announces the image (manifest, config, layers) in the DHT and waits for
   * it, at most RESULT_ANNOUNCE_WAIT_MS or until the job is cancelled: the
   * result is sent once the image is findable, not before. A failed or slow
   * announcement is logged, not fatal: the requester fetches from this agent
   * directly.
   */
  const announce = async (out: BuildOutput, signal: AbortSignal): Promise<void> => {
    const digests = [out.digest, ...out.blobs.map(b => b.digest)]
    const announcing = Promise.all(digests.map(async d => { await transfer.provide(d, { signal: AbortSignal.timeout(RESULT_ANNOUNCE_MS) }) }))
      .then(() => 'announced' as const, (err: Error) => { say('warn', `announcing ${out.digest} failed: ${err.message}`); return 'failed' as const })
    let timer: NodeJS.Timeout | undefined
    const waited = new Promise<'waited'>(resolve => {
      timer = setTimeout(() => { resolve('waited') }, RESULT_ANNOUNCE_WAIT_MS)
      signal.addEventListener('abort', () => { resolve('waited') }, { once: true })
    })
    const how = await Promise.race([announcing, waited])
    clearTimeout(timer)
    if (how === 'waited' && !signal.aborted) say('info', `announcing ${out.digest} takes more than ${RESULT_ANNOUNCE_WAIT_MS} ms; sending the result meanwhile`)
  }
  // A built image is kept from `kiln gc` for its requester to fetch, also after a resume.
  const builder: JobBuilder = {
    build: async (request, options) => {
      try {
        return await building.hold(async () => {
          const out = await inner.build(request, options)
          // One lease per result: the same image built again renews it rather than adding one (no pile-up under steady load).
          leases.keep(`job-result:${out.digest}`, RESULT_LEASE_MS, [out.digest, ...out.blobs.map(b => b.digest)])
          await announce(out, options.signal)
          // Publish this build's steps for other trusted builders, in the background: a slow DHT must not hold the result.
          if (networkCache !== undefined) {
            networkCache.publish({ image: { mediaType: out.mediaType, digest: out.digest, size: out.size } })
              .then(r => { log?.info({ published: r.published, storedOn: r.storedOn }, 'build cache records published') })
              .catch((err: Error) => { say('warn', `publishing the build cache failed: ${err.message}`) })
          }
          return out
        })
      } finally {
        // After each job, in the background: the result is leased, the rest may go.
        void upkeep?.enforce()
      }
    }
  }
  const agent = createJobAgent({
    key: init.privateKey,
    transport,
    policy: j.policy,
    builder,
    context: createNetworkContextSource({
      store: init.store,
      workDir: join(j.dataDir, 'jobs'),
      leases,
      fetch: async (digest, o) => await transfer.fetch(digest, { size: o.size, providers: o.providers, signal: o.signal })
    }),
    bases: createNetworkBaseSource({
      store: init.store,
      refs: j.refs,
      leases,
      pull: async (root, o) => await transfer.pull(root, o),
      registries: j.baseRegistries === true
    }),
    platforms: j.platforms,
    capabilities: j.capabilities ?? [],
    concurrency: j.concurrency ?? 1,
    allowNetwork: j.allowNetwork ?? false,
    ...(j.othersRefused !== undefined ? { othersRefused: j.othersRefused } : {}),
    certs: j.certs,
    journal: createAgentJobStore(j.db, message => { log?.warn(message) }),
    replayCache: createDbReplayCache(j.db),
    ...(j.institution !== undefined ? { institution: j.institution } : {}),
    ...(j.heartbeatMs !== undefined ? { heartbeatMs: j.heartbeatMs } : {}),
    hasBlob: async (digest) => await init.store.has(digest as `sha256:${string}`),
    log: say,
    ...(init.metrics !== undefined ? { metrics: init.metrics } : {})
  })
  agent.start()
  return {
    transport,
    agent: {
      ...agent,
      configure: (settings) => {
        if (settings.policy !== undefined) cachePolicy = settings.policy
        agent.configure(settings)
      }
    },
    stop: async (options) => {
      await agent.stop(options)
      await transport.stop()
    }
  }
}
