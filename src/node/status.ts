/**
 * The status the gateway's page shows of the process around it
 * (src/gateway/status.ts): this node's capability description and addresses,
 * the peers it is connected to with their capability records, the agent's
 * jobs with the tail of their logs, and store usage. The gateway takes it as
 * a StatusSource and never sees the agent.
 *
 * Costly parts are cached: a peer's record is read from the peer itself
 * (protocols/capability.md §5) at most every PEER_RECORD_TTL_MS (a peer
 * without one again after PEER_NO_RECORD_TTL_MS), store
 * usage (a walk of the store) measured at most every STORE_USAGE_TTL_MS;
 * a snapshot waits for neither longer than SNAPSHOT_WAIT_MS and shows what
 * it has.
 */
import type { PeerId } from '@libp2p/interface'
import type { JobAgent } from '../../agent/jobs/index.ts'
import type { LocalStore } from '../content/index.ts'
import type { NodeStatus, StatusPeer, StatusSource, StatusStoreUsage } from '../gateway/index.ts'
import type { CapabilityDescription, KilnNode } from '../p2p/index.ts'
import { storeUsage } from './store-usage.ts'

export const PEER_RECORD_TTL_MS = 60_000
/** A peer that had no record (an agent that just started has signed none yet) is asked again sooner. */
export const PEER_NO_RECORD_TTL_MS = 5_000
export const STORE_USAGE_TTL_MS = 30_000
export const SNAPSHOT_WAIT_MS = 2_000
/** Peers a snapshot lists (and reads records of). */
export const MAX_STATUS_PEERS = 64
const PEER_READ_TIMEOUT_MS = 3_000

export interface NodeStatusInit {
  store: LocalStore
  /** store.quota in bytes. */
  quota?: number
  /** Absent for a gateway without a network. */
  node?: KilnNode
  /** What the agent advertises; absent for a gateway without an agent. */
  description?: CapabilityDescription
  /** The agent's job side, when it takes jobs. */
  jobs?: JobAgent
}

interface Cached<T> { value?: T, at: number, ttl?: number, pending?: Promise<void> }

/** Resolves with p, or with undefined after ms: a snapshot shows what it has rather than wait. */
async function within (p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([p, new Promise<void>(resolve => { timer = setTimeout(resolve, ms) })])
  clearTimeout(timer)
}

const ENDED = new Set(['succeeded', 'failed', 'cancelled'])

/** status() lists running and queued jobs, then finished ones oldest first: show the running, then the latest finished. */
function newestFirst<T extends { state: string }> (jobs: T[]): T[] {
  return [...jobs.filter(j => !ENDED.has(j.state)), ...jobs.filter(j => ENDED.has(j.state)).reverse()]
}

export function createNodeStatus (init: NodeStatusInit): StatusSource {
  const records = new Map<string, Cached<StatusPeer>>()
  const usage: Cached<StatusStoreUsage> = { at: 0 }

  const refreshUsage = (): Promise<void> => {
    usage.pending ??= storeUsage(init.store, init.quota).then(u => {
      usage.value = { blobs: u.blobs, bytes: u.bytes, buildCache: { bytes: u.buildCache.bytes }, quota: u.quota, pinnedBytes: u.pinnedBytes, leasedBytes: u.leasedBytes, pins: u.pins, filesystem: u.filesystem, measuredAt: new Date().toISOString() }
      usage.at = Date.now()
    }, () => { usage.at = Date.now() }).finally(() => { usage.pending = undefined })
    return usage.pending
  }

  const refreshPeer = async (node: KilnNode, peer: PeerId, entry: Cached<StatusPeer>): Promise<void> => {
    const { readCapabilityRecord } = await import('../p2p/index.ts')
    const record = await readCapabilityRecord(node, peer, { from: 'peer', peerTimeoutMs: PEER_READ_TIMEOUT_MS }).catch(() => undefined)
    entry.at = Date.now()
    entry.ttl = record === undefined ? PEER_NO_RECORD_TTL_MS : PEER_RECORD_TTL_MS
    entry.value = record === undefined
      ? { peerId: peer.toString(), addresses: [] }
      : {
          peerId: peer.toString(),
          addresses: [],
          platforms: [...record.platforms.map(p => p.platform), ...record.emulated.map(p => `${p} (emulated)`)],
          capabilities: record.capabilities,
          ...(record.institution === undefined ? {} : { institution: record.institution })
        }
  }

  const peers = async (node: KilnNode): Promise<StatusPeer[]> => {
    const connected = node.getPeers().slice(0, MAX_STATUS_PEERS)
    const ids = new Set(connected.map(p => p.toString()))
    for (const id of records.keys()) if (!ids.has(id)) records.delete(id)
    const waits: Array<Promise<void>> = []
    for (const peer of connected) {
      const id = peer.toString()
      let entry = records.get(id)
      if (entry === undefined) { entry = { at: 0 }; records.set(id, entry) }
      const e = entry
      if (e.pending === undefined && Date.now() - e.at > (e.ttl ?? 0)) {
        e.pending = refreshPeer(node, peer, e).finally(() => { e.pending = undefined })
      }
      if (e.pending !== undefined && e.value === undefined) waits.push(e.pending)
    }
    if (waits.length > 0) await within(Promise.allSettled(waits), SNAPSHOT_WAIT_MS)
    return connected.map(peer => {
      const id = peer.toString()
      const known = records.get(id)?.value ?? { peerId: id, addresses: [] }
      return { ...known, addresses: node.getConnections(peer).map(c => c.remoteAddr.toString()) }
    })
  }

  return {
    snapshot: async (): Promise<NodeStatus> => {
      if (Date.now() - usage.at > STORE_USAGE_TTL_MS) {
        const p = refreshUsage()
        if (usage.value === undefined) await within(p, SNAPSHOT_WAIT_MS)
      }
      const { node, description, jobs } = init
      return {
        ...(node === undefined
          ? {}
          : {
              node: {
                peerId: node.peerId.toString(),
                addresses: node.getMultiaddrs().map(m => m.toString()),
                platforms: description?.platforms.map(p => p.platform) ?? [],
                capabilities: description?.capabilities ?? [],
                ...(description?.institution === undefined ? {} : { institution: description.institution }),
                takesJobs: jobs !== undefined
              }
            }),
        peers: node === undefined ? [] : await peers(node),
        jobs: newestFirst(jobs?.status() ?? []).map(j => ({ ...j, log: jobs?.logTail(j.jobId, j.platform) ?? [] })),
        ...(usage.value === undefined ? {} : { store: usage.value })
      }
    }
  }
}
