/**
 * A requester on a real node, as `kiln submit` and `kiln jobs` run it: the
 * store served and announced (so builders can fetch the context and the
 * pinned bases), the job transport over libp2p, blobs fetched peer to peer
 * into the local store, jobs journaled in the data dir's database, and the
 * finished image kept: the index stored, names set, optionally exported.
 *
 * @example
 * ```ts
 * const session = await startRequesterSession({ node, key, store, policy, certs })
 * const context = await session.shareContext('./app')
 * const { pins } = await session.pinBases([{ platform: 'linux/amd64', plan }])
 * const result = await session.requester.submit({ recipe, context, bases: pins, platforms: ['linux/amd64'] })
 * const image = await session.keep(result, { tags: [{ repository: 'app', tag: '1' }] })
 * await session.stop()
 * ```
 */
import type { PrivateKey } from '@libp2p/interface'
import { createLeases } from '../content/index.ts'
import type { Digest, LocalStore } from '../content/index.ts'
import { exportImage, OCI_INDEX } from '../oci/index.ts'
import type { Descriptor, ExportOptions } from '../oci/index.ts'
import type { KilnNode } from '../p2p/index.ts'
import { createLibp2pJobTransport } from '../jobs/index.ts'
import { createTransfer } from '../transfer/index.ts'
import type { FetchProgress, Transfer } from '../transfer/index.ts'
import { createDbReplayCache, createMemoryReplayCache } from '../trust/index.ts'
import type { TrustPolicy } from '../trust/index.ts'
import type { JobTransport } from '../jobs/index.ts'
import { heldBlobs, pinBases } from './bases.ts'
import type { PinnedBases, PlatformPlan } from './bases.ts'
import { packContext } from './context-pack.ts'
import type { PackOptions } from './context-pack.ts'
import { createRequesterJobStore } from './job-store.ts'
import type { RequesterJobStore } from './job-store.ts'
import { createRequester } from './requester.ts'
import type { Requester, SubmitResult } from './index.ts'

/** How long a shared context or pinned base is kept from `kiln gc`: a job's default validity. */
const JOB_LEASE_MS = 24 * 3600_000

export interface RequesterSessionInit {
  node: KilnNode
  key: PrivateKey
  store: LocalStore
  policy: TrustPolicy
  /** This node's membership certificates (requester role), presented with jobs, awards and cancels. */
  certs?: unknown[]
  offerWindowMs?: number
  heartbeatMs?: number
  log?: (level: 'info' | 'warn', message: string) => void
  /** Reports of blobs fetched from the network (results, pinned bases), for a progress display. */
  onFetchProgress?: (progress: FetchProgress) => void
  /**
   * The node's blob transfer and job transport when another service of the
   * process runs them already (an agent's, under `kiln up`): libp2p lets one
   * handler per protocol, so a second transfer or transport on the same node
   * would take over the agent's. Shared ones are used as they are, neither
   * started nor stopped by the session; frames are checked for replays in
   * memory then. Default: the session's own.
   */
  shared?: { transfer: Transfer, transport?: JobTransport }
}

export interface RequesterSession {
  readonly requester: Requester
  readonly transfer: Transfer
  readonly journal: RequesterJobStore
  /** Keeps a context tar already in the store from `kiln gc` for a job's life and announces it. */
  shareStored: (digest: Digest) => void
  /** Packs a context dir into the store (deterministic tar) and announces it; resolves once it is stored. `onProgress`: the bytes of the tar stored so far. */
  shareContext: (dir: string, options?: PackOptions & { onProgress?: (bytes: number) => void }) => Promise<{ digest: Digest, size: number }>
  /**
   * Pins every image the plans name (protocols/job.md §3.1: from the store,
   * the network or a registry), keeps what the store holds of them from
   * `kiln gc` for a job's life and announces it. Plain names it cannot
   * resolve are left unpinned, for builders to hold. Throws BaseImageError
   * (src/builder) naming the first other base it cannot resolve.
   */
  pinBases: (plans: PlatformPlan[], options?: { signal?: AbortSignal }) => Promise<PinnedBases>
  /**
   * Keeps a verified result: stores the index of a multi-platform job,
   * names the image (manifest, or index) and exports it when asked.
   * Returns the image's descriptor.
   */
  keep: (result: SubmitResult, options?: { tags?: Array<{ repository: string, tag: string }>, export?: ExportOptions }) => Promise<Descriptor>
  stop: () => Promise<void>
}

export async function startRequesterSession (init: RequesterSessionInit): Promise<RequesterSession> {
  const { node, store } = init
  const content = store.content
  const ownTransfer = init.shared === undefined ? createTransfer({ node, store: content }) : undefined
  const transfer = init.shared?.transfer ?? ownTransfer as Transfer
  await ownTransfer?.start()
  const ownTransport = init.shared?.transport === undefined ? createLibp2pJobTransport({ node }) : undefined
  const transport: JobTransport = init.shared?.transport ?? ownTransport as JobTransport
  await ownTransport?.start()
  const journal = createRequesterJobStore(store.db, message => init.log?.('warn', message))
  const announcing = new Set<Promise<void>>()
  // Announcing a context helps builders that find it through the DHT; it is not worth waiting for once we stop.
  const stopping = new AbortController()
  const leases = createLeases(store.db)
  const onFetchProgress = init.onFetchProgress !== undefined ? { onProgress: init.onFetchProgress } : {}
  const announce = (digest: Digest, what: string): void => {
    const p = transfer.provide(digest, { signal: AbortSignal.any([stopping.signal, AbortSignal.timeout(30_000)]) })
      .catch((err: Error) => { if (!stopping.signal.aborted) init.log?.('warn', `announcing ${what} failed: ${err.message}`) })
      .finally(() => { announcing.delete(p) })
    announcing.add(p)
  }
  const requester = createRequester({
    key: init.key,
    transport,
    policy: init.policy,
    certs: init.certs ?? [],
    journal,
    // A shared transport hands each frame to the agent too, whose replay cache is the data dir's: the same
    // table would take the agent's sighting of an offer for a replay here. The session's own is in memory.
    replayCache: init.shared?.transport !== undefined ? createMemoryReplayCache() : createDbReplayCache(store.db),
    ...(init.offerWindowMs !== undefined ? { offerWindowMs: init.offerWindowMs } : {}),
    ...(init.heartbeatMs !== undefined ? { heartbeatMs: init.heartbeatMs } : {}),
    ...(init.log !== undefined ? { log: init.log } : {}),
    blobs: {
      fetch: async (blob, providers, options = {}) => {
        const digest = blob.digest as Digest
        await transfer.fetch(digest, { size: blob.size, providers, ...(options.signal !== undefined ? { signal: options.signal } : {}), ...onFetchProgress })
        const info = await content.info(digest)
        if (info.size !== blob.size) throw new Error(`${digest} is ${info.size} bytes, the result says ${blob.size}`)
        return options.discard === true ? new Uint8Array(0) : await content.readBytes(digest, blob.size)
      }
    }
  })
  return {
    requester,
    transfer,
    journal,
    shareStored (digest) {
      leases.add(leases.create('job-context', JOB_LEASE_MS), [digest])
      announce(digest, 'the context')
    },
    async shareContext (dir, options = {}) {
      const { onProgress, ...pack } = options
      const info = await content.ingest(packContext(dir, pack), undefined, onProgress !== undefined ? { onProgress } : {})
      // Builders fetch it while the job lives (24 h by default): keep it from `kiln gc` that long.
      leases.add(leases.create('job-context', JOB_LEASE_MS), [info.digest])
      announce(info.digest, 'the context')
      return { digest: info.digest, size: info.size }
    },
    async pinBases (plans, options = {}) {
      const pinned = await pinBases({
        store: content,
        refs: store.refs,
        fetch: async (digest, signal) => { await transfer.fetch(digest, { ...(signal !== undefined ? { signal } : {}), ...onFetchProgress }) },
        ...(options.signal !== undefined ? { signal: options.signal } : {})
      }, plans)
      const held = await heldBlobs(content, pinned.pins)
      leases.add(leases.create('job-base', JOB_LEASE_MS), held)
      for (const digest of held) announce(digest, `base blob ${digest}`)
      return pinned
    },
    async keep (result, options = {}) {
      let descriptor: Descriptor
      if (result.index !== undefined) {
        const info = await content.ingest(result.index.bytes, { digest: result.index.digest as Digest, size: result.index.size })
        descriptor = { mediaType: OCI_INDEX, digest: info.digest, size: info.size }
      } else {
        const p = result.platforms[0]
        if (p === undefined) throw new Error(`job ${result.jobId} has no platform result`)
        descriptor = { mediaType: p.mediaType, digest: p.digest as Digest, size: p.size }
      }
      for (const t of options.tags ?? []) store.refs.set(t.repository, t.tag, descriptor)
      if (options.export !== undefined) await exportImage(content, descriptor, options.export)
      return descriptor
    },
    async stop () {
      requester.stop()
      stopping.abort()
      await ownTransport?.stop()
      await Promise.allSettled([...announcing])
      await ownTransfer?.stop()
    }
  }
}
