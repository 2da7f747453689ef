/**
 * Capability discovery (protocols/capability.md §4): an agent publishes its
 * signed record under `/kiln-cap/<peerId>` and provides one key per platform
 * and capability; a requester finds providers of a key, reads their records
 * and keeps the valid, unexpired ones.
 */
import type { Logger } from 'pino'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { CID } from 'multiformats/cid'
import { agentCid, capabilityCid, capabilityDhtKey, platformCid } from '../../protocols/capability.ts'
import type { CapabilityRecord } from '../../protocols/capability.ts'
import { CAPABILITY_DEFAULT_TTL_MS } from '../../protocols/constants.ts'
import { signCapabilityRecord, verifyCapabilityRecord } from './capability-record.ts'
import type { KilnNode } from './node.ts'

/** What an agent says about itself; the advertiser adds peerId, seq, times and addresses. */
export type CapabilityDescription = Omit<CapabilityRecord, 'v' | 'peerId' | 'seq' | 'issuedAt' | 'expiresAt' | 'addresses'>

export interface CapabilityAdvertiserInit {
  node: KilnNode
  privateKey: PrivateKey
  /** Called before every publication, so queue length and limits stay current. */
  describe: () => CapabilityDescription | Promise<CapabilityDescription>
  /** Validity of each record; default 30 min. */
  ttlMs?: number
  /** Republish period; default ttl / 3, so two refreshes may fail before the record lapses. */
  refreshMs?: number
  /** Bound on one publication (put + provides). Default: refreshMs. */
  publishTimeoutMs?: number
  log?: Logger
}

export interface CapabilityAdvertiser {
  /** Publishes now and then every refreshMs until stop(). Resolves after the first publication (errors logged, not thrown). */
  start: () => Promise<void>
  /** Stops refreshing; the record lapses at its expiry. Safe to call twice. */
  stop: () => Promise<void>
  /** Publishes now (e.g. after the queue changed). Throws if the put reached no peer. */
  publish: () => Promise<CapabilityRecord>
  /** The last record published, if any. */
  current: () => CapabilityRecord | undefined
}

export function createCapabilityAdvertiser (init: CapabilityAdvertiserInit): CapabilityAdvertiser {
  const ttlMs = init.ttlMs ?? CAPABILITY_DEFAULT_TTL_MS
  const refreshMs = init.refreshMs ?? Math.floor(ttlMs / 3)
  const publishTimeoutMs = init.publishTimeoutMs ?? refreshMs
  const provided = new Set<string>()
  const stopController = new AbortController()
  let last: CapabilityRecord | undefined
  let timer: NodeJS.Timeout | undefined
  let publishing: Promise<CapabilityRecord> | undefined

  async function publishOnce (): Promise<CapabilityRecord> {
    const description = await init.describe()
    const now = Date.now()
    const record: CapabilityRecord = {
      ...description,
      v: 1,
      peerId: init.node.peerId.toString(),
      // Monotonic across restarts without persisting anything: the clock, or one more than last time.
      seq: Math.max(now, (last?.seq ?? 0) + 1),
      issuedAt: now,
      expiresAt: now + ttlMs,
      addresses: init.node.getMultiaddrs().map(ma => ma.toString()).slice(0, 16)
    }
    const value = await signCapabilityRecord(record, init.privateKey)
    const signal = AbortSignal.any([stopController.signal, AbortSignal.timeout(publishTimeoutMs)])
    await drain(init.node.services.dht.put(capabilityDhtKey(record.peerId), value, { signal }))
    last = record
    const keys: CID[] = [agentCid(), ...record.platforms.map(p => platformCid(p.platform)), ...record.capabilities.map(c => capabilityCid(c))]
    await Promise.all(keys.filter(k => !provided.has(k.toString())).map(async (key) => {
      await drain(init.node.services.dht.provide(key, { signal }))
      provided.add(key.toString())
    }))
    init.log?.info({ seq: record.seq, expiresAt: new Date(record.expiresAt).toISOString(), platforms: record.platforms.map(p => p.platform), capabilities: record.capabilities }, 'capability record published')
    return record
  }

  async function publish (): Promise<CapabilityRecord> {
    // One publication at a time; a caller arriving mid-publication waits for a fresh one.
    while (publishing !== undefined) await publishing.catch(() => {})
    publishing = publishOnce()
    try {
      return await publishing
    } finally {
      publishing = undefined
    }
  }

  function schedule (): void {
    if (stopController.signal.aborted) return
    timer = setTimeout(() => {
      publish().catch(err => { init.log?.warn({ err }, 'capability record refresh failed') }).finally(schedule)
    }, refreshMs)
    timer.unref()
  }

  return {
    async start () {
      try {
        await publish()
      } catch (err) {
        init.log?.warn({ err }, 'first capability record publication failed; retrying on the refresh timer')
      }
      schedule()
    },
    async stop () {
      stopController.abort()
      clearTimeout(timer)
      await publishing?.catch(() => {})
    },
    publish,
    current: () => last
  }
}

export interface FindAgentsOptions {
  /** `os/arch[/variant]`, as the agent wrote it in its record. */
  platform?: string
  capability?: string
  /** Bound on the whole search; default 10 s. */
  timeoutMs?: number
  /** Stop after this many records; default unbounded. */
  limit?: number
  /** End the provider search once no new provider arrived for this long (after the first); default 2 s. */
  quietMs?: number
  /** Parallel record lookups; default 8. */
  concurrency?: number
  signal?: AbortSignal
}

/**
 * Finds agents by platform and/or capability: providers of the discovery
 * key, then their records, verified (signature, expiry) and filtered on both
 * criteria. Agents whose record has lapsed (gone peers) are left out.
 */
export async function findAgents (node: KilnNode, options: FindAgentsOptions = {}): Promise<CapabilityRecord[]> {
  const timeoutMs = options.timeoutMs ?? 10_000
  const outer = AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(options.signal !== undefined ? [options.signal] : [])])
  // The provider search ends early once it has gone quiet: a Kademlia query otherwise runs until
  // every close peer answered, long after the providers near the key were found.
  const quiet = new AbortController()
  const searchSignal = AbortSignal.any([outer, quiet.signal])
  let quietTimer: NodeJS.Timeout | undefined
  const armQuiet = (): void => { clearTimeout(quietTimer); quietTimer = setTimeout(() => { quiet.abort() }, options.quietMs ?? 2000) }
  const signal = outer
  const key = options.platform !== undefined
    ? platformCid(options.platform)
    : options.capability !== undefined ? capabilityCid(options.capability) : agentCid()
  const seen = new Set<string>()
  const records: CapabilityRecord[] = []
  const pending = new Set<Promise<void>>()
  const limit = options.limit ?? Infinity
  const concurrency = options.concurrency ?? 8

  const lookup = async (peer: PeerId): Promise<void> => {
    const record = await readCapabilityRecord(node, peer, { signal }).catch(() => undefined)
    if (record === undefined || records.length >= limit) return
    if (options.platform !== undefined && !record.platforms.some(p => p.platform === options.platform)) return
    if (options.capability !== undefined && !record.capabilities.includes(options.capability)) return
    records.push(record)
  }

  try {
    for await (const event of node.services.dht.findProviders(key, { signal: searchSignal })) {
      if (event.name !== 'PROVIDER') continue
      armQuiet()
      for (const provider of event.providers) {
        const id = provider.id.toString()
        if (seen.has(id)) continue
        seen.add(id)
        if (provider.multiaddrs.length > 0) {
          await node.peerStore.merge(provider.id, { multiaddrs: provider.multiaddrs }).catch(() => {})
        }
        const p: Promise<void> = lookup(provider.id).finally(() => pending.delete(p))
        pending.add(p)
        if (pending.size >= concurrency) await Promise.race(pending)
      }
      if (records.length >= limit) break
    }
  } catch (err) {
    // A timeout ends the search with what was found so far.
    if (!searchSignal.aborted) throw err
  } finally {
    clearTimeout(quietTimer)
  }
  await Promise.all(pending)
  return records.slice(0, limit)
}

export interface ReadRecordOptions {
  signal?: AbortSignal
}

/** Reads and verifies one peer's current record from the DHT; undefined if there is no valid one. */
export async function readCapabilityRecord (node: KilnNode, peer: PeerId | string, options: ReadRecordOptions = {}): Promise<CapabilityRecord | undefined> {
  const peerId = typeof peer === 'string' ? peerIdFromString(peer).toString() : peer.toString()
  let best: CapabilityRecord | undefined
  let valid = 0
  try {
    for await (const event of node.services.dht.get(capabilityDhtKey(peerId), { signal: options.signal })) {
      if (event.name !== 'VALUE') continue
      const record = await verifyCapabilityRecord(event.value, { peerId }).catch(() => undefined)
      if (record === undefined) continue
      if (best === undefined || record.seq > best.seq) best = record
      // The owner's own copy is its newest; otherwise a few valid copies are enough to pick from.
      if (event.from.toString() === peerId || ++valid >= RECORD_COPIES) break
    }
  } catch (err) {
    if (best === undefined && options.signal?.aborted !== true && (err as Error).name !== 'NotFoundError') throw err
  }
  return best
}

/** Valid copies of a record read before choosing the newest, when the owner itself did not answer. */
const RECORD_COPIES = 3

async function drain (events: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of events) { /* consume */ }
}
