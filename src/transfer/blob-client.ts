/**
 * The requesting side of `/kiln/blob/1.0.0`: one stream to one peer,
 * carrying sequential ranged requests (protocols/blob.md §2–3).
 */
import type { PeerId } from '@libp2p/interface'
import { BlobResponseSchema } from '../../protocols/blob.ts'
import { BLOB_IDLE_TIMEOUT_MS, BLOB_MAX_HEADER_BYTES, BLOB_MAX_RANGE_BYTES, BLOB_MAX_REQUESTS_PER_STREAM, BLOB_PROTOCOL } from '../../protocols/constants.ts'
import type { Digest } from '../content/index.ts'
import { StreamProtocolError, dialBulkProtocol, dialDirect, jsonFrame, parseJsonFrame, streamChannel } from '../p2p/index.ts'
import type { ByteChannel, KilnNode } from '../p2p/index.ts'
import { BlobRequestError } from './errors.ts'

export interface RangeResult {
  /** The blob size the peer claims. */
  size: number
  bytes: Uint8Array
}

export interface BlobSessionOptions {
  /** Longest stall of a response; default BLOB_IDLE_TIMEOUT_MS. */
  idleTimeoutMs?: number
  /**
   * Open a direct channel (protocols/transport.md §5) when the peer takes
   * one, else a libp2p stream; default true. False: always a stream.
   */
  direct?: boolean
}

/** The server sends only what was asked; anything beyond one range and a header is a protocol breach. */
const MAX_UNREAD = BLOB_MAX_RANGE_BYTES + 2 * BLOB_MAX_HEADER_BYTES

/**
 * A reusable request stream to one peer: a direct channel when the peer
 * takes one, else a libp2p stream on the bulk connection. Not safe for
 * concurrent requests; use one per worker.
 */
export class BlobSession {
  private readonly node: KilnNode
  readonly peer: PeerId
  private channel: ByteChannel | undefined
  private requests = 0
  private readonly idleTimeoutMs: number
  private readonly direct: boolean

  constructor (node: KilnNode, peer: PeerId, options: BlobSessionOptions = {}) {
    this.node = node
    this.peer = peer
    this.idleTimeoutMs = options.idleTimeoutMs ?? BLOB_IDLE_TIMEOUT_MS
    this.direct = options.direct ?? true
  }

  /**
   * Reads `length` bytes at `offset` (length 0: only the size). Throws
   * BlobRequestError for an error status, StreamProtocolError or a timeout
   * for a broken stream (the session then reopens on the next call).
   * With `into` (at least `length` bytes) the bytes land there and the
   * result is a view of it: a caller that reads range after range reuses
   * one buffer instead of allocating one per range (each allocation of a
   * few MiB of external memory pushes V8 towards a full GC).
   */
  async read (digest: Digest, offset: number, length: number, signal: AbortSignal, onBytes?: (n: number) => void, into?: Uint8Array): Promise<RangeResult> {
    const channel = await this.open(signal)
    try {
      this.requests++
      await channel.send(jsonFrame({ digest, offset, length }), signal)
      const frame = await channel.readFrame(BLOB_MAX_HEADER_BYTES, { signal, idleTimeoutMs: this.idleTimeoutMs })
      if (frame === undefined) throw new StreamProtocolError('stream ended before a response')
      const parsed = BlobResponseSchema.safeParse(parseJsonFrame(frame))
      if (!parsed.success) throw new BlobRequestError('protocol', `malformed response from ${this.peer.toString()}`)
      const res = parsed.data
      if (res.status !== 'ok') {
        if (res.status === 'bad-request') this.reset()
        throw new BlobRequestError(res.status, `${this.peer.toString()} answered ${res.status} for ${digest} [${offset}, +${length})`)
      }
      if (res.offset !== offset || res.length !== length || offset + length > res.size) {
        throw new StreamProtocolError(`response range [${res.offset}, +${res.length}) of ${res.size} does not match the request`)
      }
      const bytes = into !== undefined && into.byteLength >= length ? into.subarray(0, length) : new Uint8Array(length)
      await channel.readInto(bytes, { signal, idleTimeoutMs: this.idleTimeoutMs }, onBytes)
      if (this.requests >= BLOB_MAX_REQUESTS_PER_STREAM) await this.close()
      return { size: res.size, bytes }
    } catch (err) {
      if ((err as Error).name !== BlobRequestError.name) this.reset(err as Error)
      throw err
    }
  }

  async close (): Promise<void> {
    const channel = this.channel
    this.channel = undefined
    await channel?.close(AbortSignal.timeout(1000)).catch(() => { channel.abort(new Error('close timed out')) })
  }

  private reset (err: Error = new Error('session reset')): void {
    this.channel?.abort(err)
    this.channel = undefined
  }

  private async open (signal: AbortSignal): Promise<ByteChannel> {
    if (this.channel === undefined || !this.channel.open) {
      // A direct channel when the peer takes one; else a stream on the peer's TCP+TLS connection
      // when it has one (src/p2p/bulk-connection.ts).
      const direct = this.direct ? await dialDirect(this.node, this.peer, BLOB_PROTOCOL, MAX_UNREAD, signal) : undefined
      this.channel = direct ?? streamChannel(await dialBulkProtocol(this.node, this.peer, BLOB_PROTOCOL, signal), MAX_UNREAD)
      this.requests = 0
    }
    return this.channel
  }
}
