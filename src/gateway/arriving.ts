/**
 * A blob being fetched into the store, served while it arrives (streaming
 * pull-through, docs/gateway.md §"Streaming pull-through"). The fetch writes
 * into a partial of the store (src/transfer's onPartial); readers follow
 * its contiguous prefix and share that one fetch, however many there are
 * and whenever they join (a late one reads what has arrived so far from
 * the partial, then follows).
 *
 * The rule that keeps a wrong blob from ever completing: the last byte of
 * every response (whole blob or range) is read from the store, that is only
 * after the whole blob's sha256 matched and it was committed. Until then a
 * response stops one byte short of its Content-Length. When the digest check
 * fails, or the fetch fails, every reader that already sent bytes throws,
 * so the HTTP layer cuts the connection: the client sees a short transfer,
 * never a complete wrong one.
 */
import type { ContentStore, Digest, PartialBlob } from '../content/index.ts'
import { STREAM_CHUNK } from './constants.ts'
import type { ByteRange } from './range.ts'

/** What the gateway serves from while a blob arrives; see ./context.ts PullThrough.streamBlob. */
export interface ArrivingBlob {
  readonly digest: Digest
  readonly size: number
  /**
   * The bytes of `range` (default all), as they arrive; throws when the blob
   * turns out wrong or the fetch fails. With `reuseBuffers`, bytes read from
   * the partial land in two buffers filled in turn (a chunk is overwritten
   * when the one after the next is asked for: see ./http.ts ReusedBuffersBody).
   */
  read: (store: ContentStore, range?: ByteRange, options?: { reuseBuffers?: boolean }) => AsyncIterable<Uint8Array>
  /** Settles when the fetch ends: true once the verified blob is in the store. Never rejects. */
  readonly done: Promise<boolean>
  /** Why the fetch failed, once done is false. */
  readonly failure: Error | undefined
}

/** Thrown to a reader whose bytes came from a partial that failed its digest check (or whose fetch failed). */
export class ArrivalFailedError extends Error {
  static override readonly name = 'ArrivalFailedError'
  override readonly name = ArrivalFailedError.name
  constructor (message: string, options?: ErrorOptions) { super(message, options) }
}

function prefixEnd (partial: PartialBlob): number {
  const first = partial.written()[0]
  return first !== undefined && first[0] === 0 ? first[1] : 0
}

/** The fetch's side: attach each partial, report changes and mismatches, settle once. */
export class ArrivingBlobState implements ArrivingBlob {
  readonly digest: Digest
  readonly size: number
  readonly done: Promise<boolean>
  failure: Error | undefined
  private partial: PartialBlob | undefined
  /** Bumped with every partial after the first: readers of an older one give up. */
  private generation = 0
  private mismatch: string | undefined
  private outcome: 'pending' | 'stored' | 'failed' = 'pending'
  private resolveDone: (ok: boolean) => void = () => {}
  private wake: { promise: Promise<void>, resolve: () => void } | undefined

  constructor (digest: Digest, partial: PartialBlob) {
    this.digest = digest
    this.size = partial.size
    this.partial = partial
    this.done = new Promise(resolve => { this.resolveDone = resolve })
  }

  /** A new partial: the previous one failed its digest check. */
  attach (partial: PartialBlob): void {
    if (partial === this.partial) return
    this.partial = partial
    this.generation++
    this.changed()
  }

  /** Bytes from these peers did not hash to the digest. */
  mismatched (peers: string[]): void {
    this.mismatch = `${this.digest} failed its digest check (bytes from ${peers.join(', ') || 'an earlier run'}); the response was cut short`
    this.changed()
  }

  settle (ok: boolean, failure?: Error): void {
    if (this.outcome !== 'pending') return
    this.outcome = ok ? 'stored' : 'failed'
    if (!ok) this.failure = failure ?? new Error(`fetching ${this.digest} from peers failed`)
    this.partial = undefined
    this.changed()
    this.resolveDone(ok)
  }

  /** Wakes readers waiting for bytes: called on every progress report. */
  changed (): void {
    const w = this.wake
    this.wake = undefined
    w?.resolve()
  }

  private next (): Promise<void> {
    if (this.wake === undefined) {
      let resolve: () => void = () => {}
      const promise = new Promise<void>(r => { resolve = r })
      this.wake = { promise, resolve }
    }
    return this.wake.promise
  }

  read (store: ContentStore, range?: ByteRange, options: { reuseBuffers?: boolean } = {}): AsyncIterable<Uint8Array> {
    const offset = range?.offset ?? 0
    const end = offset + (range?.length ?? this.size)
    return this.follow(store, offset, end, options.reuseBuffers === true)
  }

  private async * follow (store: ContentStore, offset: number, end: number, reuse: boolean): AsyncGenerator<Uint8Array> {
    // Allocated on first use, the size of the largest read; a fresh buffer per read otherwise.
    const buffers: Buffer[] = []
    let turn = 0
    let pos = offset
    let generation = this.generation
    let sent = false
    if (pos === end) {
      // An empty response is complete at once: it waits for the verdict like a last byte would.
      if (!await this.done) throw new ArrivalFailedError(`${this.failure?.message ?? 'fetch failed'}; the response was cut short`, { cause: this.failure })
      return
    }
    const cut = (): ArrivalFailedError => new ArrivalFailedError(this.mismatch ?? `${this.digest} was fetched again after a failed digest check; the response was cut short`)
    while (pos < end) {
      const woken = this.next()
      if (this.generation !== generation) {
        if (sent) throw cut()
        generation = this.generation
      }
      if (this.outcome === 'stored') {
        yield * store.read(this.digest, { offset: pos, length: end - pos })
        return
      }
      if (this.outcome === 'failed') throw new ArrivalFailedError(`${this.failure?.message ?? 'fetch failed'}; the response was cut short`, { cause: this.failure })
      const partial = this.partial
      // Never the response's last byte from the partial: that one waits for the verified blob.
      const limit = partial === undefined ? pos : Math.min(prefixEnd(partial), end - 1)
      if (pos < limit) {
        const length = Math.min(limit - pos, STREAM_CHUNK)
        let bytes: Uint8Array | undefined
        // The buffer not given out last: the caller is done with the one before (see read()).
        const into = reuse ? buffers[turn] ??= Buffer.allocUnsafeSlow(Math.min(end - offset, STREAM_CHUNK)) : undefined
        try {
          bytes = await partial!.readAt(pos, length, into)
        } catch {
          // Closed under us: committed, or discarded after a failed check. The next turn knows which.
          await woken
          continue
        }
        if (this.generation !== generation) {
          if (sent) throw cut()
          continue
        }
        sent = true
        pos += bytes.byteLength
        turn ^= 1
        yield bytes
        continue
      }
      await woken
    }
  }
}
