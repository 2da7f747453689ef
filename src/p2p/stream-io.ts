/**
 * Reading and writing a libp2p stream with bounds and timeouts: framed
 * headers (u16 big-endian length + bytes) and raw byte runs. Every wait
 * takes an AbortSignal and an idle timeout, so a silent peer cannot hold a
 * fetch or a handler forever.
 */
import { TimeoutError } from '@libp2p/interface'
import type { Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import { StreamProtocolError } from './errors.ts'

export const FRAME_MAX = 0xffff
/** Bytes readInto waits for at a time (fewer at the end of its target). */
const READ_BATCH = 512 * 1024

/**
 * Buffers what a stream receives from the moment it is constructed (libp2p 3
 * streams emit `message` events whether or not anyone listens, so a reader
 * must be attached before the first byte can arrive).
 */
export class StreamReader {
  private readonly chunks: Uint8Array[] = []
  private buffered = 0
  private ended = false
  private error: Error | undefined
  private wake: (() => void) | undefined
  /** Bytes the pending wait needs; data below that does not wake it (only pushes its idle deadline on). */
  private want = 0
  private lastData = 0
  private readonly maxBuffered: number

  /** `maxBuffered`: unread bytes beyond this abort the stream (a peer sending more than asked). */
  constructor (stream: Stream, maxBuffered: number) {
    this.maxBuffered = maxBuffered
    // A peer that writes and closes at once (a record server) may have closed before this reader was
    // attached: the bytes buffered then are replayed to the listener below. libp2p 3 can already say
    // readableEnded (its 'end' dispatched) with those bytes still buffered, and sends no 'end' after
    // the replay (seen on every direct capability read after dialProtocol), so the replay itself ends
    // the stream. Treating readableEnded alone as the end lost the record, and every read fell back to a DHT walk.
    const closedBefore = stream.readableEnded || stream.remoteWriteStatus === 'closed'
    let replaying = closedBefore ? stream.readBufferLength : 0
    if (closedBefore && replaying === 0) this.ended = true
    stream.addEventListener('message', (evt) => {
      const data: Uint8Array | Uint8ArrayList = evt.data
      // A Uint8ArrayList is kept as its parts: subarray() would copy every received byte once more.
      for (const bytes of data instanceof Uint8Array ? [data] : data) {
        if (bytes.byteLength === 0) continue
        this.chunks.push(bytes)
        this.buffered += bytes.byteLength
        if (replaying > 0) {
          replaying -= bytes.byteLength
          if (replaying <= 0) this.ended = true
        }
      }
      this.lastData = performance.now()
      if (this.buffered > this.maxBuffered) {
        const err = new StreamProtocolError(`peer sent ${this.buffered} unrequested bytes (limit ${this.maxBuffered})`)
        this.fail(err)
        stream.abort(err)
      }
      if (this.buffered >= this.want || this.error != null || this.ended) this.notify()
    })
    stream.addEventListener('remoteCloseWrite', () => { this.ended = true; this.notify() })
    stream.addEventListener('end', () => { this.ended = true; this.notify() })
    stream.addEventListener('close', (evt) => {
      this.ended = true
      if (evt.error != null) this.error ??= evt.error
      this.notify()
    })
  }

  /** True once the remote closed its end and every byte has been read. */
  get done (): boolean {
    return this.ended && this.buffered === 0
  }

  /** Reads one frame; undefined on a clean end of stream before its first byte. */
  async readFrame (maxBytes: number, options: WaitOptions): Promise<Uint8Array | undefined> {
    if (!(await this.fill(2, options, true))) return undefined
    const head = this.take(2)
    const length = ((head[0] ?? 0) << 8) | (head[1] ?? 0)
    if (length > maxBytes) throw new StreamProtocolError(`frame of ${length} bytes is over the limit of ${maxBytes}`)
    await this.fill(length, options, false)
    return this.take(length)
  }

  /**
   * Copies exactly `target.byteLength` bytes into target, calling onBytes
   * as they arrive. Throws StreamProtocolError if the stream ends first.
   */
  async readInto (target: Uint8Array, options: WaitOptions, onBytes?: (n: number) => void): Promise<void> {
    let at = 0
    while (at < target.byteLength) {
      // Woken once per READ_BATCH rather than per message (16-64 KiB each): each wake is a
      // promise, a timer and an abort listener.
      await this.fill(Math.min(target.byteLength - at, READ_BATCH), options, false)
      while (at < target.byteLength && this.chunks.length > 0) {
        const head = this.chunks[0] as Uint8Array
        const n = Math.min(head.byteLength, target.byteLength - at)
        target.set(n === head.byteLength ? head : head.subarray(0, n), at)
        if (n === head.byteLength) this.chunks.shift()
        else this.chunks[0] = head.subarray(n)
        this.buffered -= n
        at += n
        onBytes?.(n)
      }
    }
  }

  private fail (err: Error): void {
    this.error ??= err
  }

  private notify (): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  /** Waits until `n` bytes are buffered. Returns false on a clean end before any byte when allowEnd. */
  private async fill (n: number, options: WaitOptions, allowEnd: boolean): Promise<boolean> {
    // A failed stream (overflow, abort) yields nothing more, even bytes already buffered.
    if (this.error != null) throw this.error
    while (this.buffered < n) {
      if (this.error != null) throw this.error
      if (this.ended) {
        if (allowEnd && this.buffered === 0) return false
        throw new StreamProtocolError(`stream ended after ${this.buffered} of ${n} expected bytes`)
      }
      this.want = n
      try {
        await this.waitForData(options)
      } finally {
        this.want = 0
      }
    }
    return true
  }

  private async waitForData (options: WaitOptions): Promise<void> {
    options.signal?.throwIfAborted()
    const waitFrom = performance.now()
    await new Promise<void>((resolve, reject) => {
      // Idle means no byte at all: bytes that arrive without completing the wait push the deadline on.
      const onIdle = (): void => {
        const quiet = performance.now() - Math.max(this.lastData, waitFrom)
        if (quiet < options.idleTimeoutMs) { timer = setTimeout(onIdle, options.idleTimeoutMs - quiet); return }
        cleanup()
        reject(new TimeoutError(`no data for ${options.idleTimeoutMs} ms`))
      }
      let timer = setTimeout(onIdle, options.idleTimeoutMs)
      const onAbort = (): void => { cleanup(); reject(options.signal?.reason ?? new Error('aborted')) }
      const cleanup = (): void => {
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
        this.wake = undefined
      }
      this.wake = () => { cleanup(); resolve() }
      options.signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  private take (n: number): Uint8Array {
    const first = this.chunks[0]
    if (first !== undefined && first.byteLength >= n) {
      if (first.byteLength === n) this.chunks.shift()
      else this.chunks[0] = first.subarray(n)
      this.buffered -= n
      return first.subarray(0, n)
    }
    const out = new Uint8Array(n)
    let at = 0
    while (at < n) {
      const head = this.chunks[0] as Uint8Array
      const k = Math.min(head.byteLength, n - at)
      out.set(head.subarray(0, k), at)
      if (k === head.byteLength) this.chunks.shift()
      else this.chunks[0] = head.subarray(k)
      at += k
    }
    this.buffered -= n
    return out
  }
}

export interface WaitOptions {
  signal?: AbortSignal
  /** Longest wait for the next byte. */
  idleTimeoutMs: number
}

/** Encodes a frame: u16 big-endian length, then the bytes. */
export function encodeFrame (bytes: Uint8Array): Uint8Array {
  if (bytes.byteLength > FRAME_MAX) throw new RangeError(`frame of ${bytes.byteLength} bytes is over ${FRAME_MAX}`)
  const out = new Uint8Array(2 + bytes.byteLength)
  out[0] = bytes.byteLength >> 8
  out[1] = bytes.byteLength & 0xff
  out.set(bytes, 2)
  return out
}

/** Sends bytes, waiting for the muxer to drain when its buffer is full. */
export async function sendAll (stream: Stream, data: Uint8Array, signal?: AbortSignal): Promise<void> {
  if (!stream.send(data)) await stream.onDrain({ signal })
}

/** Encodes a value as a JSON frame. */
export function jsonFrame (value: unknown): Uint8Array {
  return encodeFrame(new TextEncoder().encode(JSON.stringify(value)))
}

/** Parses a frame's bytes as JSON (the caller then checks them with its zod schema). */
export function parseJsonFrame (bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    throw new StreamProtocolError('frame is not UTF-8 JSON', { cause: err })
  }
}
