/**
 * Multi-peer ranged fetch of one blob into the content store, with
 * resumption and liar detection (protocols/blob.md §5–6).
 *
 * Rounds:
 * 1. spread: every missing chunk from whichever provider is free.
 * 2. cross-check (only after a failed commit): each chunk from a provider
 *    other than the one that sent it last time; when the two disagree, a
 *    third provider decides and the outvoted one is banned.
 * 3. single source: the whole blob from one provider at a time.
 * Chunks are not hashed as they arrive: only who sent each one is noted.
 * When a commit fails, the chunks are read back from the partial and hashed
 * before it is discarded; the cross-check round hashes what it receives.
 * After a successful commit the bytes are proven, so every provider that
 * ever sent a chunk differing from the committed one is banned (nothing to
 * compare, and no hashing, when the first commit succeeds).
 */
import { createHash } from 'node:crypto'
import type { PeerId } from '@libp2p/interface'
import type { ContentStore, Digest, PartialBlob } from '../content/index.ts'
import type { KilnNode } from '../p2p/index.ts'
import type { Metrics } from '../metrics/index.ts'
import { BlobSession } from './blob-client.ts'
import {
  DEFAULT_CHUNK_SIZE, DEFAULT_MAX_BLOB_SIZE, DEFAULT_MAX_PEERS, DEFAULT_PER_PEER_CONCURRENCY,
  FIND_PROVIDERS_TIMEOUT_MS, MAX_PEER_FAILURES, NO_PROVIDER_TIMEOUT_MS, SYNC_EVERY_CHUNKS
} from './constants.ts'
import { BlobRequestError, BlobVerificationError, NoProvidersError } from './errors.ts'
import { ProviderSet } from './providers.ts'
import { DigestMismatchError } from '../content/errors.ts'

export interface FetchProgress {
  digest: Digest
  size: number
  /** Bytes of the blob held (resumed + fetched). */
  bytes: number
  /** Bytes received over the network in this call, including any discarded. */
  received: number
  /** Bytes per second over the last few seconds. */
  rate: number
  /** Providers currently sending. */
  peers: number
}

export interface FetchBlobOptions {
  /** Expected size; when absent a provider is asked (and the digest still decides). */
  size?: number
  /** Peers believed to hold the blob (the agent that built it, the requester's source). */
  providers?: Array<PeerId | string>
  /** Look up providers in the DHT too; default true. */
  findProviders?: boolean
  /** Also ask every connected peer; default true. */
  askConnected?: boolean
  chunkSize?: number
  perPeerConcurrency?: number
  maxPeers?: number
  maxSize?: number
  /** Peers banned for the session (shared across fetches); banned peers are skipped and added here. */
  banned?: Set<string>
  signal?: AbortSignal
  onProgress?: (progress: FetchProgress) => void
  /**
   * Called with the partial each round writes into, once the size is known:
   * its written() ranges grow as chunks land, so a reader can serve the
   * prefix while the fetch runs (the gateway's streaming pull-through). A
   * later call means the previous partial failed its digest check and was
   * discarded: bytes read from it are unverified and must not be trusted.
   */
  onPartial?: (partial: PartialBlob) => void
  /** Called when a round's bytes fail the digest check, with the peers that sent them. */
  onDigestMismatch?: (peers: string[]) => void
  /** Human-readable notes (dropped and banned peers). */
  log?: (message: string) => void
  /** Counts kiln_bytes_fetched_total by peer and the provider lookups. */
  metrics?: Metrics
}

export interface FetchResult {
  digest: Digest
  size: number
  /** Bytes the store already had when the call began. */
  resumedBytes: number
  /** Bytes received per provider in this call. */
  fromPeers: Map<string, number>
  /** Providers banned during this call for sending bad bytes. */
  banned: string[]
  rounds: number
  alreadyPresent: boolean
}

/** A range of the blob; rounds use the same chunk size, so its offset names it across rounds. */
interface Chunk { offset: number, length: number }
/** One version of a chunk: its length and sha256 (hex). */
interface Version { length: number, hash: string }
type Mode = 'spread' | 'cross-check' | 'single'

export async function fetchBlob (node: KilnNode, store: ContentStore, digest: Digest, options: FetchBlobOptions = {}): Promise<FetchResult> {
  const fetch = new BlobFetch(node, store, digest, options)
  return await fetch.run()
}

class BlobFetch {
  private readonly node: KilnNode
  private readonly store: ContentStore
  private readonly digest: Digest
  private readonly options: FetchBlobOptions
  private readonly chunkSize: number
  private readonly providers = new ProviderSet()
  private readonly banned: Set<string>
  private readonly bannedHere: string[] = []
  /** Providers that said not-found or failed too often: not banned, just useless for this blob. */
  private readonly dropped = new Set<string>()
  private readonly fromPeers = new Map<string, number>()
  /** The hash of every chunk version a peer sent that was checked (failed rounds, cross-checks): peer -> chunk offset -> version. */
  private readonly observed = new Map<string, Map<number, Version>>()
  /** Who sent each chunk now in the partial (chunk offset -> peer and length). */
  private readonly sentBy = new Map<number, { peer: string, length: number }>()
  private readonly controller = new AbortController()
  private received = 0
  private readonly active = new Map<string, number>()
  private readonly rate = new RateMeter()

  constructor (node: KilnNode, store: ContentStore, digest: Digest, options: FetchBlobOptions) {
    this.node = node
    this.store = store
    this.digest = digest
    this.options = options
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE
    this.banned = options.banned ?? new Set()
  }

  async run (): Promise<FetchResult> {
    if (await this.store.has(this.digest)) {
      const info = await this.store.info(this.digest)
      return { digest: this.digest, size: info.size, resumedBytes: info.size, fromPeers: new Map(), banned: [], rounds: 0, alreadyPresent: true }
    }
    const signal = this.options.signal !== undefined ? AbortSignal.any([this.options.signal, this.controller.signal]) : this.controller.signal
    for (const p of this.options.providers ?? []) this.providers.add(p)
    if (this.options.askConnected !== false) for (const p of this.node.getPeers()) this.providers.add(p)
    const search = this.options.findProviders === false
      ? Promise.resolve()
      : this.providers.search(this.node, this.digest, AbortSignal.any([signal, AbortSignal.timeout(FIND_PROVIDERS_TIMEOUT_MS)]), this.options.metrics)
    try {
      const size = this.options.size ?? await this.probeSize(signal)
      let partial = await this.store.openPartial(this.digest, size)
      this.options.onPartial?.(partial)
      const resumedBytes = covered(partial.written())
      const tried = new Set<string>()
      let mode: Mode = 'spread'
      for (let round = 1; ; round++) {
        let chunks = this.missing(partial, size)
        let single: string | undefined
        if (mode === 'single') {
          single = this.usable().map(p => p.toString()).find(p => !tried.has(p))
          if (single === undefined) {
            await partial.abort().catch(() => {})
            throw new BlobVerificationError(`no provider of ${this.digest} sent bytes that match it (tried ${[...tried].join(', ') || 'none'})`)
          }
          tried.add(single)
        }
        try {
          await this.runRound(partial, chunks, mode, single, signal)
        } catch (err) {
          await partial.sync().catch(() => {})
          await partial.close().catch(() => {})
          throw err
        }
        try {
          await partial.commit({ keepOnMismatch: true })
        } catch (err) {
          if ((err as Error).name !== DigestMismatchError.name) throw err
          // Some chunk is wrong: note what each peer sent, then every chunk is fetched again and checked against it.
          const senders = [...new Set([...this.sentBy.values()].map(s => s.peer))]
          this.options.log?.(`${this.digest} failed its digest check; its bytes came from ${senders.join(', ')}`)
          this.options.onDigestMismatch?.(senders)
          try {
            await this.observeSent(partial)
          } finally {
            await partial.abort()
          }
          mode = mode === 'spread' ? 'cross-check' : 'single'
          partial = await this.store.openPartial(this.digest, size)
          this.options.onPartial?.(partial)
          chunks = []
          continue
        }
        await this.banProven(signal)
        return { digest: this.digest, size, resumedBytes, fromPeers: this.fromPeers, banned: this.bannedHere, rounds: round, alreadyPresent: false }
      }
    } finally {
      this.controller.abort()
      await search
    }
  }

  private usable (): PeerId[] {
    return this.providers.list().filter(p => !this.banned.has(p.toString()) && !this.dropped.has(p.toString()) && !p.equals(this.node.peerId))
  }

  private ban (peer: string, why: string): void {
    if (this.banned.has(peer)) return
    this.banned.add(peer)
    this.bannedHere.push(peer)
    this.options.log?.(`banned ${peer} for this session: ${why}`)
  }

  /** After a verified commit: any peer whose chunk differs from the committed one lied. Reads the blob only when some chunk was checked. */
  private async banProven (signal: AbortSignal): Promise<void> {
    const truth = new Map<string, string>()
    for (const [peer, chunks] of this.observed) {
      if (this.banned.has(peer)) continue
      for (const [offset, seen] of chunks) {
        const key = `${offset}+${seen.length}`
        let hash = truth.get(key)
        if (hash === undefined) {
          const h = createHash('sha256')
          for await (const part of this.store.read(this.digest, { offset, length: seen.length, signal })) h.update(part)
          hash = h.digest('hex')
          truth.set(key, hash)
        }
        if (hash !== seen.hash) { this.ban(peer, `chunk at ${offset} differs from the verified blob`); break }
      }
    }
  }

  /** After a failed commit, before the partial is discarded: the hash of every chunk each peer sent in this round. */
  private async observeSent (partial: PartialBlob): Promise<void> {
    for (const [offset, { peer, length }] of this.sentBy) {
      this.observe(peer, offset, { length, hash: sha256Hex(await partial.readAt(offset, length)) })
    }
    this.sentBy.clear()
  }

  private missing (partial: PartialBlob, size: number): Chunk[] {
    const chunks: Chunk[] = []
    let at = 0
    const gaps: Array<[number, number]> = []
    for (const [a, b] of partial.written()) {
      if (a > at) gaps.push([at, a])
      at = Math.max(at, b)
    }
    if (at < size) gaps.push([at, size])
    for (const [a, b] of gaps) {
      for (let o = a; o < b; o += this.chunkSize) {
        chunks.push({ offset: o, length: Math.min(this.chunkSize, b - o) })
      }
    }
    return chunks
  }

  private async probeSize (signal: AbortSignal): Promise<number> {
    const maxSize = this.options.maxSize ?? DEFAULT_MAX_BLOB_SIZE
    const asked = new Set<string>()
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(NO_PROVIDER_TIMEOUT_MS)])
    while (true) {
      const fresh = this.usable().filter(p => !asked.has(p.toString()))
      for (const peer of fresh) {
        asked.add(peer.toString())
        const session = new BlobSession(this.node, peer)
        try {
          const { size } = await session.read(this.digest, 0, 0, AbortSignal.any([deadline, AbortSignal.timeout(5000)]))
          if (size > maxSize) throw new NoProvidersError(`${peer.toString()} claims ${this.digest} is ${size} bytes, over the limit of ${maxSize}`)
          return size
        } catch (err) {
          if ((err as Error).name === NoProvidersError.name) throw err
          this.dropped.add(peer.toString())
        } finally {
          await session.close()
        }
      }
      // Peers found while those were asked are asked at once; with none left and the search over,
      // nobody has it. (Waiting for a change here after the search had ended waited for the deadline.)
      if (!deadline.aborted && this.usable().some(p => !asked.has(p.toString()))) continue
      if (deadline.aborted || !this.providers.isSearching) {
        signal.throwIfAborted()
        throw new NoProvidersError(`no peer provides ${this.digest}`)
      }
      await this.waitForProviders(deadline)
    }
  }

  private async waitForProviders (signal: AbortSignal): Promise<void> {
    await new Promise<void>((resolve) => {
      const off = this.providers.onChange(() => { off(); signal.removeEventListener('abort', onAbort); resolve() })
      const onAbort = (): void => { off(); resolve() }
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  private async runRound (partial: PartialBlob, chunks: Chunk[], mode: Mode, single: string | undefined, outer: AbortSignal): Promise<void> {
    const round = new AbortController()
    const signal = AbortSignal.any([outer, round.signal])
    const queue = [...chunks]
    const inFlight = new Set<Chunk>()
    const running = new Map<string, number>()
    const all: Array<Promise<void>> = []
    const perPeer = this.options.perPeerConcurrency ?? DEFAULT_PER_PEER_CONCURRENCY
    const maxPeers = this.options.maxPeers ?? DEFAULT_MAX_PEERS
    let written = 0
    let failure: Error | undefined
    let waiters: Array<() => void> = []
    const notify = (): void => { const w = waiters; waiters = []; for (const f of w) f() }
    const changed = async (ms: number): Promise<void> => {
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, ms)
        t.unref()
        waiters.push(() => { clearTimeout(t); resolve() })
      })
    }
    const offProviders = this.providers.onChange(notify)
    // Periodic syncs run beside the transfer (the disk writes back while the network delivers);
    // one at a time, skipped while one runs; a failure fails the round.
    let syncing: Promise<void> | undefined
    const background = (p: PartialBlob): void => {
      if (syncing !== undefined) return
      syncing = p.sync().catch((err: Error) => { failure ??= err }).finally(() => { syncing = undefined })
    }

    const eligible = (chunk: Chunk, peer: string): boolean => {
      if (mode === 'single') return peer === single
      if (mode === 'cross-check') {
        if (this.observed.get(peer)?.get(chunk.offset) === undefined) return true
        // Only when no other usable peer is left to give a second opinion.
        return !this.usable().some(p => p.toString() !== peer && this.observed.get(p.toString())?.get(chunk.offset) === undefined)
      }
      return true
    }

    const worker = async (peer: PeerId): Promise<void> => {
      const id = peer.toString()
      const session = new BlobSession(this.node, peer)
      // Reused for every range this worker reads: accept() has written it (the store keeps no reference) when it returns.
      const buffer = Buffer.allocUnsafeSlow(this.chunkSize)
      let failures = 0
      try {
        while (!signal.aborted && !this.banned.has(id) && !this.dropped.has(id)) {
          const at = queue.findIndex(c => eligible(c, id))
          if (at < 0) {
            if (inFlight.size === 0) return
            await changed(1000)
            continue
          }
          const chunk = queue.splice(at, 1)[0] as Chunk
          inFlight.add(chunk)
          this.active.set(id, (this.active.get(id) ?? 0) + 1)
          try {
            const { bytes } = await session.read(this.digest, chunk.offset, chunk.length, signal, n => { this.countBytes(id, n) }, buffer)
            failures = 0
            await this.accept(partial, chunk, id, bytes, mode, signal)
            if (++written % SYNC_EVERY_CHUNKS === 0) background(partial)
            this.emitProgress(partial)
          } catch (err) {
            queue.push(chunk)
            if (signal.aborted) return
            if ((err as Error).name === BlobRequestError.name || ++failures >= MAX_PEER_FAILURES) {
              this.dropped.add(id)
              this.options.log?.(`dropping ${id}: ${(err as Error).message}`)
            }
          } finally {
            inFlight.delete(chunk)
            const left = (this.active.get(id) ?? 1) - 1
            if (left === 0) this.active.delete(id)
            else this.active.set(id, left)
          }
        }
      } finally {
        await session.close()
      }
    }

    const spawn = (): void => {
      for (const peer of this.usable()) {
        const id = peer.toString()
        if ((running.get(id) ?? 0) > 0) continue
        if ([...running.values()].filter(n => n > 0).length >= maxPeers) break
        if (mode === 'single' && id !== single) continue
        running.set(id, perPeer)
        for (let i = 0; i < perPeer; i++) {
          all.push(worker(peer)
            .catch((err: Error) => { failure ??= err })
            .finally(() => { running.set(id, (running.get(id) ?? 1) - 1); notify() }))
        }
      }
    }

    const progressTimer = setInterval(() => { this.emitProgress(partial) }, 250)
    let idleSince = Date.now()
    try {
      while (queue.length > 0 || inFlight.size > 0) {
        if (failure !== undefined) throw failure
        signal.throwIfAborted()
        spawn()
        const live = [...running.values()].reduce((a, b) => a + b, 0)
        if (live > 0) {
          idleSince = Date.now()
        } else if (!this.providers.isSearching || Date.now() - idleSince > NO_PROVIDER_TIMEOUT_MS) {
          throw new NoProvidersError(`every provider of ${this.digest} failed or was banned; ${queue.length} chunks missing`)
        }
        await changed(500)
      }
      await syncing
      if (failure !== undefined) throw failure
      await partial.sync()
      this.emitProgress(partial)
    } finally {
      await syncing
      clearInterval(progressTimer)
      offProviders()
      round.abort()
      notify()
      await Promise.allSettled(all)
    }
  }

  /** Writes a received chunk and notes its sender; in cross-check mode hashes it and settles disagreements by a third opinion. */
  private async accept (partial: PartialBlob, chunk: Chunk, peer: string, bytes: Uint8Array, mode: Mode, signal: AbortSignal): Promise<void> {
    if (mode === 'cross-check') {
      let hash = sha256Hex(bytes)
      this.observe(peer, chunk.offset, { length: chunk.length, hash })
      const others = [...this.observed].filter(([p, m]) => {
        const seen = m.get(chunk.offset)
        return p !== peer && seen !== undefined && seen.length === chunk.length && seen.hash !== hash
      })
      for (const [other] of others) {
        const judge = this.usable().find(p => p.toString() !== peer && p.toString() !== other)
        if (judge === undefined) break
        const session = new BlobSession(this.node, judge)
        try {
          const third = await session.read(this.digest, chunk.offset, chunk.length, signal, n => { this.countBytes(judge.toString(), n) })
          const thirdHash = sha256Hex(third.bytes)
          this.observe(judge.toString(), chunk.offset, { length: chunk.length, hash: thirdHash })
          if (thirdHash === hash) this.ban(other, 'outvoted')
          else if (thirdHash === this.observed.get(other)?.get(chunk.offset)?.hash) {
            this.ban(peer, 'outvoted')
            bytes = third.bytes
            peer = judge.toString()
            hash = thirdHash
          }
        } catch { /* no verdict: the digest check still decides */ } finally {
          await session.close()
        }
      }
    }
    // Unattributed while the write runs: a write that fails half way leaves bytes nobody is known to have sent.
    this.sentBy.delete(chunk.offset)
    try {
      await partial.writeAt(chunk.offset, bytes)
    } catch (err) {
      // The chunk is fetched again, perhaps from another peer: keep this version to compare with the verified blob.
      if (mode !== 'cross-check') this.observe(peer, chunk.offset, { length: chunk.length, hash: sha256Hex(bytes) })
      throw err
    }
    this.sentBy.set(chunk.offset, { peer, length: chunk.length })
  }

  private observe (peer: string, offset: number, version: Version): void {
    let m = this.observed.get(peer)
    if (m === undefined) { m = new Map(); this.observed.set(peer, m) }
    m.set(offset, version)
  }

  private countBytes (peer: string, n: number): void {
    this.received += n
    this.fromPeers.set(peer, (this.fromPeers.get(peer) ?? 0) + n)
    this.options.metrics?.inc('kiln_bytes_fetched_total', { peer }, n)
    this.rate.add(n)
  }

  private emitProgress (partial: PartialBlob): void {
    if (this.options.onProgress === undefined) return
    this.options.onProgress({ digest: this.digest, size: partial.size, bytes: covered(partial.written()), received: this.received, rate: this.rate.perSecond(), peers: this.active.size })
  }
}

function covered (ranges: Array<[number, number]>): number {
  return ranges.reduce((n, [a, b]) => n + b - a, 0)
}

function sha256Hex (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

const RATE_SLOT_MS = 250
const RATE_WINDOW_MS = 3000

/** Bytes per second over the last few seconds, summed in 250 ms slots (bytes arrive in many small pieces; one entry each cost more than the rest of the progress). */
class RateMeter {
  private readonly slots: Array<{ at: number, bytes: number }> = []

  add (n: number, now = Date.now()): void {
    const at = now - now % RATE_SLOT_MS
    const last = this.slots.at(-1)
    if (last?.at === at) { last.bytes += n; return }
    this.slots.push({ at, bytes: n })
    if (this.slots.length > RATE_WINDOW_MS / RATE_SLOT_MS) this.slots.shift()
  }

  perSecond (now = Date.now()): number {
    const live = this.slots.filter(s => now - s.at < RATE_WINDOW_MS)
    const first = live[0]
    if (first === undefined) return 0
    return Math.round(live.reduce((n, s) => n + s.bytes, 0) * 1000 / Math.max(RATE_SLOT_MS, now - first.at))
  }
}
