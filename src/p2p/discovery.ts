/**
 * Capability discovery (protocols/capability.md §4–5): an agent publishes its
 * signed record under `/kiln-cap/<peerId>`, serves it on
 * `/kiln/capability/1.0.0`, and provides one key per platform (native and
 * emulated) and per capability; a searcher finds the providers of the keys
 * of its criteria, reads each candidate's record from the candidate itself
 * (the DHT copy when it cannot be reached), verifies it and keeps the records
 * that meet every criterion.
 *
 * A publication is "stored" once at least one other peer has answered the
 * put of the record; only then is it logged as published. Before its walks,
 * kad-dht keeps the record and each provider key on this node, which answers
 * for them from then on: a lone agent (no DHT peer yet) is findable by the
 * first node that connects to it, and its waiting publication goes on as
 * soon as a DHT server arrives (or, between two tries, starts again then).
 */
import type { Logger } from 'pino'
import type { PeerId, PeerInfo, PrivateKey } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { CID } from 'multiformats/cid'
import type { Metrics } from '../metrics/index.ts'
import { agentCid, capabilityCid, capabilityDhtKey, discoveryCids, matchesCapabilityQuery, platformCid } from '../../protocols/capability.ts'
import type { CapabilityRecord } from '../../protocols/capability.ts'
import { CAPABILITY_DEFAULT_TTL_MS, KAD_PROTOCOL } from '../../protocols/constants.ts'
import { signCapabilityRecord, verifyCapabilityRecord } from './capability-record.ts'
import { PublishError } from './errors.ts'
import type { KilnNode } from './node.ts'
import { createRecordServer, readRecordFromPeer } from './record-exchange.ts'
import { mapLimit } from '../util/map-limit.ts'
import { NotFoundError } from '@libp2p/interface'
import { isErrorOf } from '../util/error-class.ts'

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
  /** Bound on one publication (put + provides). Default: refreshMs; never more than ttlMs - refreshMs. */
  publishTimeoutMs?: number
  log?: Logger
}

export interface CapabilityAdvertiser {
  /**
   * Serves the record on `/kiln/capability/1.0.0`, publishes now and then
   * every refreshMs until stop() (sooner after a failure). Resolves after the
   * first publication (errors logged, not thrown: check current()).
   */
  start: () => Promise<void>
  /** Stops serving and refreshing; the DHT copy lapses at its expiry. Safe to call twice. */
  stop: () => Promise<void>
  /**
   * Publishes now (e.g. after the queue changed). Throws PublishError if no
   * peer stored the record. `reprovide`: provide every discovery key again,
   * not only new ones (the peers holding them may have lost them, e.g. a
   * relay that restarted).
   */
  publish: (options?: { reprovide?: boolean }) => Promise<CapabilityRecord>
  /** The last record signed (and served), if any. */
  current: () => CapabilityRecord | undefined
  /** The last record whose publication (put and provides) succeeded, if any. */
  published: () => CapabilityRecord | undefined
  /** How many peers stored the record at the last publication that ended (0 before one has, or when it failed). */
  storedOn: () => number
}

export function createCapabilityAdvertiser (init: CapabilityAdvertiserInit): CapabilityAdvertiser {
  const ttlMs = init.ttlMs ?? CAPABILITY_DEFAULT_TTL_MS
  const refreshMs = init.refreshMs ?? Math.floor(ttlMs / 3)
  // Publications start every refreshMs, and one may run past that, so the longest gap between two
  // records is max(refreshMs, publishTimeoutMs): bounded below the ttl so a slow DHT cannot let the record lapse.
  const publishTimeoutMs = Math.min(init.publishTimeoutMs ?? refreshMs, Math.max(1, ttlMs - refreshMs))
  const provided = new Set<string>()
  const stopController = new AbortController()
  let last: CapabilityRecord | undefined
  let lastPublished: CapabilityRecord | undefined
  let signed: Uint8Array | undefined
  let timer: NodeJS.Timeout | undefined
  let publishing: Promise<CapabilityRecord> | undefined
  let failures = 0
  let lastStart = 0
  let storedOn = 0
  let arrivalTimer: NodeJS.Timeout | undefined
  const server = createRecordServer(init.node, () => signed)

  /** `reprovide`: provide keys provided before too (a peer arrived to a record stored nowhere). */
  async function publishOnce (reprovide: boolean): Promise<CapabilityRecord> {
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
    // Served directly from now on, whatever the DHT put below achieves.
    signed = value
    last = record
    const signal = AbortSignal.any([stopController.signal, AbortSignal.timeout(publishTimeoutMs)])
    // Keys already provided are left to kad-dht's reprovider.
    const keys = discoveryCids(record).filter(k => reprovide || !provided.has(k.toString()))
    const provide = async (key: CID): Promise<void> => {
      await drain(init.node.services.dht.provide(key, { signal }))
      provided.add(key.toString())
    }
    // Each put and provide keeps its value on this node before its walk, and a walk waits for a first DHT peer.
    // A lone node starts them all at once, so that all are served here before anyone connects; a connected
    // one runs the walks (each k messages and more) a few at a time.
    const lone = !(await hasDhtPeer(init.node))
    const put = storeRecord(init.node, record.peerId, value, signal)
    const provides = lone ? Promise.all(keys.map(provide)) : put.then(async () => { await mapLimit(keys, PROVIDE_CONCURRENCY, provide) })
    const stored = await Promise.all([put, provides]).then(([n]) => n, (err: unknown) => { storedOn = 0; throw err })
    storedOn = stored
    if (stored === 0) throw new PublishError(`no peer stored the capability record of ${record.peerId}`)
    lastPublished = record
    init.log?.info({ seq: record.seq, storedOn: stored, expiresAt: new Date(record.expiresAt).toISOString(), platforms: record.platforms.map(p => p.platform), emulated: record.emulated, capabilities: record.capabilities }, 'capability record published')
    return record
  }

  /**
   * A DHT peer arrived. While the record is stored nowhere, publish again
   * soon (several arrivals, one publication), unless a publication runs:
   * its walks were waiting for this very peer. More arrivals do not count:
   * every `kiln submit` is one, and the record is re-placed each refreshMs.
   */
  const onIdentify = (evt: CustomEvent<{ protocols: string[] }>): void => {
    if (stopController.signal.aborted || !evt.detail.protocols.includes(KAD_PROTOCOL)) return
    if (storedOn >= ARRIVAL_REPUBLISH_BELOW || publishing !== undefined || arrivalTimer !== undefined) return
    arrivalTimer = setTimeout(() => {
      arrivalTimer = undefined
      publish(true).catch(err => { if (!stopController.signal.aborted) init.log?.warn({ err }, 'capability record publication after a peer arrived failed') })
    }, ARRIVAL_REPUBLISH_DELAY_MS)
    arrivalTimer.unref()
  }

  async function publish (reprovide = false): Promise<CapabilityRecord> {
    // One publication at a time; a caller arriving mid-publication waits for a fresh one.
    while (publishing !== undefined) await publishing.catch(() => {})
    lastStart = Date.now()
    publishing = publishOnce(reprovide)
    try {
      const record = await publishing
      failures = 0
      return record
    } catch (err) {
      failures++
      throw err
    } finally {
      publishing = undefined
    }
  }

  /**
   * The next publication starts refreshMs after the previous one started (not after it ended, or a
   * slow DHT would stretch the period past the ttl). After a failure the next try comes sooner
   * (1 s, 2 s, 4 s... up to refreshMs): an agent that started before its peers must not stay unlisted.
   */
  function schedule (): void {
    if (stopController.signal.aborted) return
    const period = failures === 0 ? refreshMs : Math.min(refreshMs, RETRY_BASE_MS * 2 ** (failures - 1))
    const delay = Math.max(0, lastStart + period - Date.now())
    timer = setTimeout(() => {
      publish().catch(err => { if (!stopController.signal.aborted) init.log?.warn({ err, failures }, 'capability record publication failed') }).finally(schedule)
    }, delay)
    timer.unref()
  }

  return {
    async start () {
      await server.start()
      init.node.addEventListener('peer:identify', onIdentify)
      try {
        await publish()
      } catch (err) {
        // Stopping aborts a publication still waiting for a first peer: not a failure.
        if (!stopController.signal.aborted) init.log?.warn({ err }, 'first capability record publication failed; retrying')
      }
      schedule()
    },
    async stop () {
      stopController.abort()
      init.node.removeEventListener('peer:identify', onIdentify)
      clearTimeout(timer)
      clearTimeout(arrivalTimer)
      await server.stop().catch(() => {})
      await publishing?.catch(() => {})
    },
    publish: async (options) => await publish(options?.reprovide === true),
    current: () => last,
    published: () => lastPublished,
    storedOn: () => storedOn
  }
}

/** Whether some connected peer speaks kiln's DHT protocol (a walk started now would not wait for one). */
async function hasDhtPeer (node: KilnNode): Promise<boolean> {
  for (const peer of node.getPeers()) {
    const known = await node.peerStore.get(peer).catch(() => undefined)
    if (known?.protocols.includes(KAD_PROTOCOL) === true) return true
  }
  return false
}

/**
 * Puts the record (kept on this node first) and resolves with how many
 * peers stored it: those that answered the PUT_VALUE with the same value.
 * The walk's other answers (closest-peer queries) store nothing.
 */
async function storeRecord (node: KilnNode, peerId: string, value: Uint8Array, signal: AbortSignal): Promise<number> {
  const stored = new Set<string>()
  try {
    for await (const event of node.services.dht.put(capabilityDhtKey(peerId), value, { signal })) {
      if (event.name === 'PEER_RESPONSE' && event.messageName === 'PUT_VALUE') stored.add(event.from.toString())
      // kad-dht reports a peer that answered with another value as an error right after its answer.
      if (event.name === 'QUERY_ERROR') stored.delete(event.from.toString())
    }
  } catch (err) {
    // Out of time with some copies stored: those count, the rest wait for the next refresh.
    if (stored.size === 0) throw err
  }
  return stored.size
}

/** Provides in flight at once during one publication of a connected node. */
const PROVIDE_CONCURRENCY = 2
/** An agent publishes again when a DHT peer arrives while its record is stored on fewer peers than this. */
export const ARRIVAL_REPUBLISH_BELOW = 1
/** How long after a DHT peer arrived the agent publishes again (arrivals meanwhile share the publication). */
const ARRIVAL_REPUBLISH_DELAY_MS = 500
/** First retry delay after a failed publication. */
const RETRY_BASE_MS = 1000

export interface FindAgentsOptions {
  /** `os/arch[/variant]`, as the agent wrote it in its record; agents that emulate it count unless nativeOnly. */
  platform?: string
  capability?: string
  /**
   * Capability names whose keys are searched for more candidates without
   * being criteria: a platform key's lookup returns at most k providers, and
   * an agent that also provides one of these keys is found through it.
   */
  candidateCapabilities?: string[]
  /** Called with each matching record as soon as it is verified, before the search ends. */
  onRecord?: (record: CapabilityRecord) => void
  /** Leave out agents that would only emulate the platform; default false. */
  nativeOnly?: boolean
  /** Bound on the whole search; default 10 s. */
  timeoutMs?: number
  /** Return as soon as this many matching records are verified (the rest of the search is abandoned); default unbounded. */
  limit?: number
  /** End a provider search once it has made no progress (no provider, no peer response) for this long, after its first provider; default 2 s. */
  quietMs?: number
  /**
   * End a provider search once this many peers in a row have answered with a
   * provider list that named nobody new (after the first provider); default
   * 3. The providers of a key are stored on the k peers closest to it, so
   * holders that agree mean the list is complete; the rest of the walk would
   * only confirm it. 0 or Infinity: walk to the end.
   */
  settleResponses?: number
  /** Parallel record reads; default 8. */
  concurrency?: number
  /** Bound on reading one candidate's record from the candidate itself (dial and read) before its DHT copy is tried; default 3 s. */
  peerTimeoutMs?: number
  signal?: AbortSignal
  /** Debug lines: candidates whose record could not be read, searches that ended early. */
  log?: Logger
  /** Counts the DHT lookups (kiln_dht_lookups_total, kiln_dht_lookup_duration_seconds). */
  metrics?: Metrics
}

/**
 * Finds agents by platform and/or capability (protocols/capability.md §4):
 * every provider of any criterion's key is a candidate (a provider lookup
 * returns at most k peers, so one key alone can miss agents), each
 * candidate's record is read and verified, and only records meeting every
 * criterion are returned, one per agent. Agents whose record has lapsed
 * (gone peers) are left out. Never throws for a timeout: it returns what it
 * found.
 *
 * Records are read while the provider searches still run, at most
 * `concurrency` at a time, candidates already connected first (no dial);
 * a candidate that does not answer within `peerTimeoutMs` does not hold up
 * the others. With a `limit` the search ends once that many matching
 * records are verified.
 */
export async function findAgents (node: KilnNode, options: FindAgentsOptions = {}): Promise<CapabilityRecord[]> {
  const timeoutMs = options.timeoutMs ?? 10_000
  const enough = new AbortController()
  const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), enough.signal, ...(options.signal !== undefined ? [options.signal] : [])])
  const keys: CID[] = []
  if (options.platform !== undefined) keys.push(platformCid(options.platform))
  if (options.capability !== undefined) keys.push(capabilityCid(options.capability))
  if (keys.length === 0) keys.push(agentCid())
  for (const name of new Set(options.candidateCapabilities ?? [])) if (name !== options.capability) keys.push(capabilityCid(name))
  const limit = options.limit ?? Infinity
  const found = new Map<string, CapabilityRecord>()
  const readOptions: ReadRecordOptions = { signal, peerTimeoutMs: options.peerTimeoutMs ?? 3000, log: options.log, ...(options.metrics !== undefined ? { metrics: options.metrics } : {}) }

  const reads = createCandidateQueue(node, Math.max(1, options.concurrency ?? 8), async (provider) => {
    if (signal.aborted) return
    const id = provider.id.toString()
    const started = Date.now()
    const connected = node.getConnections(provider.id).length > 0
    if (provider.multiaddrs.length > 0) await node.peerStore.merge(provider.id, { multiaddrs: provider.multiaddrs }).catch(() => {})
    const record = await readCapabilityRecord(node, provider.id, readOptions).catch((err: Error) => { options.log?.debug({ err, peer: id }, 'no record read from candidate'); return undefined })
    options.log?.debug({ peer: id, ms: Date.now() - started, connected, valid: record !== undefined }, 'candidate read')
    if (record === undefined || found.size >= limit || !matchesCapabilityQuery(record, options)) return
    found.set(id, record)
    options.onRecord?.(record)
    if (found.size >= limit) enough.abort()
  })

  await Promise.all(keys.map(async key => {
    const started = Date.now()
    const how = await timeLookup(options.metrics, 'providers', async () => await searchProviders(node, key, {
      signal,
      quietMs: options.quietMs ?? 2000,
      settleResponses: options.settleResponses ?? 3,
      onProviders: providers => { reads.add(providers) }
    }), () => reads.size() > 0)
    options.log?.debug({ key: key.toString(), how, ms: Date.now() - started, candidates: reads.size() }, 'provider search ended')
  }))
  await reads.done()
  return [...found.values()].slice(0, limit)
}

interface CandidateQueue {
  /** Queues providers not seen before; connected ones go ahead of those that need a dial. */
  add: (providers: PeerInfo[]) => void
  /** Candidates seen so far. */
  size: () => number
  /** Resolves once every queued candidate has been read. */
  done: () => Promise<void>
}

/** Reads candidates at most n at a time, each once; a connected candidate is read before one that needs a dial. */
function createCandidateQueue (node: KilnNode, n: number, read: (provider: PeerInfo) => Promise<void>): CandidateQueue {
  const seen = new Set<string>()
  const waiting: PeerInfo[] = []
  const running = new Set<Promise<void>>()
  const idle: Array<() => void> = []
  const connected = (p: PeerInfo): boolean => node.getConnections(p.id).length > 0
  const pump = (): void => {
    while (running.size < n && waiting.length > 0) {
      const i = Math.max(0, waiting.findIndex(connected))
      const provider = waiting.splice(i, 1)[0]!
      const task: Promise<void> = read(provider).catch(() => {}).finally(() => {
        running.delete(task)
        pump()
        if (running.size === 0 && waiting.length === 0) idle.splice(0).forEach(resolve => { resolve() })
      })
      running.add(task)
    }
  }
  return {
    add (providers) {
      for (const p of providers) {
        const id = p.id.toString()
        if (seen.has(id)) continue
        seen.add(id)
        waiting.push(p)
      }
      pump()
    },
    size: () => seen.size,
    async done () {
      if (running.size === 0 && waiting.length === 0) return
      await new Promise<void>(resolve => idle.push(resolve))
    }
  }
}

interface SearchProvidersOptions {
  signal: AbortSignal
  quietMs: number
  settleResponses: number
  onProviders: (providers: PeerInfo[]) => void
}

/**
 * Runs a provider lookup until it ends, the signal fires, it has made no
 * progress for quietMs after its first provider (a Kademlia query otherwise
 * waits on every slow or dead close peer long after the providers near the
 * key answered), or settleResponses holders in a row have named no new
 * provider. A query that still finds providers is never cut short.
 */
async function searchProviders (node: KilnNode, key: CID, options: SearchProvidersOptions): Promise<'complete' | 'quiet' | 'settled' | 'aborted'> {
  const stop = new AbortController()
  const signal = AbortSignal.any([options.signal, stop.signal])
  let timer: NodeJS.Timeout | undefined
  const named = new Set<string>()
  let agreeing = 0
  let how: 'quiet' | 'settled' = 'quiet'
  const progress = (): void => {
    if (named.size === 0) return
    clearTimeout(timer)
    timer = setTimeout(() => { stop.abort() }, options.quietMs)
  }
  try {
    for await (const event of node.services.dht.findProviders(key, { signal })) {
      if (event.name === 'PEER_RESPONSE' && event.providers.length > 0) {
        // A holder answered (kad-dht yields its PROVIDER event, with the new ones only, right after).
        const before = named.size
        for (const p of event.providers) named.add(p.id.toString())
        agreeing = named.size > before ? 0 : agreeing + 1
      }
      if (event.name === 'PROVIDER') {
        for (const p of event.providers) named.add(p.id.toString())
        options.onProviders(event.providers)
      }
      if (event.name === 'PROVIDER' || event.name === 'PEER_RESPONSE') progress()
      if (options.settleResponses > 0 && agreeing >= options.settleResponses) {
        how = 'settled'
        stop.abort()
        break
      }
    }
    return how === 'settled' ? 'settled' : 'complete'
  } catch (err) {
    // A timeout or a quiet search ends with what was found so far.
    if (!signal.aborted) throw err
    return stop.signal.aborted ? how : 'aborted'
  } finally {
    clearTimeout(timer)
  }
}

export interface ReadRecordOptions {
  signal?: AbortSignal
  /**
   * Where to read from: `peer` asks the agent itself, `dht` does a DHT get,
   * `any` (default) asks the agent and falls back to the DHT when that fails.
   */
  from?: 'any' | 'peer' | 'dht'
  /** Bound on asking the agent itself (dial and read), on top of signal; default: the node's dial timeout and §5's 5 s read timeout. */
  peerTimeoutMs?: number
  log?: Logger
  /** Counts a DHT get (kind `record`). */
  metrics?: Metrics
}

/** Reads and verifies one peer's current record; undefined if there is no valid one. */
export async function readCapabilityRecord (node: KilnNode, peer: PeerId | string, options: ReadRecordOptions = {}): Promise<CapabilityRecord | undefined> {
  const peerId = typeof peer === 'string' ? peerIdFromString(peer) : peer
  const from = options.from ?? 'any'
  // The agent itself first, even without a known address (the dial then finds it through the DHT):
  // a DHT get is a whole walk plus correction puts, and fails outright when a correction fails.
  if (from !== 'dht' && !peerId.equals(node.peerId)) {
    try {
      const signal = options.peerTimeoutMs === undefined ? options.signal : AbortSignal.any([AbortSignal.timeout(options.peerTimeoutMs), ...(options.signal !== undefined ? [options.signal] : [])])
      const record = await readRecordFromPeer(node, peerId, signal)
      if (record !== undefined || from === 'peer') return record
    } catch (err) {
      if (from === 'peer') throw err
      options.log?.debug({ err, peer: peerId.toString() }, 'direct record read failed; trying the DHT')
    }
  }
  if (from === 'peer') return undefined
  // The search this read belongs to has ended (a limit reached, a timeout): no walk for it.
  options.signal?.throwIfAborted()
  return await timeLookup(options.metrics, 'record', async () => await readRecordFromDht(node, peerId.toString(), options.signal), r => r !== undefined)
}

/**
 * Runs one DHT lookup and records it: outcome `found` when `found(result)`,
 * `not_found` otherwise, `error` when it throws (the error is rethrown).
 */
async function timeLookup<T> (metrics: Metrics | undefined, kind: 'providers' | 'record', lookup: () => Promise<T>, found: (result: T) => boolean): Promise<T> {
  if (metrics === undefined || !metrics.enabled) return await lookup()
  const started = performance.now()
  let outcome = 'error'
  try {
    const result = await lookup()
    outcome = found(result) ? 'found' : 'not_found'
    return result
  } finally {
    metrics.inc('kiln_dht_lookups_total', { kind, outcome })
    metrics.observe('kiln_dht_lookup_duration_seconds', { kind }, (performance.now() - started) / 1000)
  }
}

/**
 * A DHT get walks to the k peers closest to the key and yields only the
 * best value the selector picked, after every answer (values that fail the
 * validator are dropped by kad-dht on the way). It is checked here again.
 */
async function readRecordFromDht (node: KilnNode, peerId: string, signal?: AbortSignal): Promise<CapabilityRecord | undefined> {
  let best: CapabilityRecord | undefined
  try {
    for await (const event of node.services.dht.get(capabilityDhtKey(peerId), { signal })) {
      if (event.name !== 'VALUE') continue
      const record = await verifyCapabilityRecord(event.value, { peerId }).catch(() => undefined)
      if (record !== undefined && (best === undefined || record.seq > best.seq)) best = record
    }
  } catch (err) {
    if (best === undefined && signal?.aborted !== true && !isErrorOf(err, NotFoundError)) throw err
  }
  return best
}

async function drain (events: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of events) { /* consume */ }
}
