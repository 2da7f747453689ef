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
 * Buffers the bytes a source pushes and hands them out as frames and byte
 * runs, each wait bounded by a signal and an idle timeout. A source that can
 * write into memory it is given (a socket's `onread`, src/p2p/direct.ts)
 * is built with `landing: true`: a pending readInto then offers the rest of
 * its target through landingSpace(), and the source reports what it wrote
 * there with landed(), so bulk bytes are written once, into their place.
 */
export class ByteReader {
  private readonly chunks: Uint8Array[] = []
  private buffered = 0
  private ended = false
  private error: Error | undefined
  private wake: (() => void) | undefined
  /** Bytes the pending wait needs; data below that does not wake it (only pushes its idle deadline on). */
  private want = 0
  private lastData = 0
  private readonly maxBuffered: number
  private readonly canLand: boolean
  /** The pending readInto's target and how far it is filled, while the source may write into it. */
  private landing: { target: Uint8Array, at: number, onBytes: ((n: number) => void) | undefined } | undefined

  /** `maxBuffered`: unread bytes beyond this fail the reader (a peer sending more than asked). */
  constructor (maxBuffered: number, options: { landing?: boolean } = {}) {
    this.maxBuffered = maxBuffered
    this.canLand = options.landing === true
  }

  /**
   * Takes bytes from the source. Returns the error when they overflow
   * maxBuffered (the source should then stop). `transient`: the source
   * reuses the memory after this call, so what is kept is copied.
   */
  push (bytes: Uint8Array, transient = false): Error | undefined {
    const l = this.landing
    if (l !== undefined && this.buffered === 0) {
      // A pending landing readInto takes them at once: were they queued, the next read would
      // see queued bytes and not land either, and so on for the rest of the range.
      const n = Math.min(bytes.byteLength, l.target.byteLength - l.at)
      l.target.set(n === bytes.byteLength ? bytes : bytes.subarray(0, n), l.at)
      this.landed(n)
      bytes = bytes.subarray(n)
    }
    if (bytes.byteLength === 0) return undefined
    this.chunks.push(transient ? new Uint8Array(bytes) : bytes)
    this.buffered += bytes.byteLength
    this.lastData = performance.now()
    if (this.buffered > this.maxBuffered) {
      const err = new StreamProtocolError(`peer sent ${this.buffered} unrequested bytes (limit ${this.maxBuffered})`)
      this.fail(err)
      this.notify()
      return err
    }
    // A landing readInto drains pushed bytes into its target before anything lands after them.
    if (this.buffered >= this.want || this.landing !== undefined) this.notify()
    return undefined
  }

  /** The source has ended, cleanly or with an error. */
  end (err?: Error): void {
    this.ended = true
    if (err !== undefined) this.error ??= err
    this.notify()
  }

  /**
   * Where the source may write next: the unfilled rest of a pending
   * readInto's target, or undefined (then it pushes). Never offered while
   * pushed bytes wait, so bytes stay in order.
   */
  landingSpace (): Uint8Array | undefined {
    const l = this.landing
    if (l === undefined || this.buffered > 0 || l.at >= l.target.byteLength) return undefined
    return l.target.subarray(l.at)
  }

  /** The source wrote n bytes at the start of the last landingSpace(). */
  landed (n: number): void {
    const l = this.landing
    // Not reachable while a source offers space only through landingSpace() and stops reading when
    // readInto fails; a throw here would be inside a socket's read callback.
    if (l === undefined) return
    l.at += n
    this.lastData = performance.now()
    l.onBytes?.(n)
    if (l.at >= l.target.byteLength) this.notify()
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
      at = this.drainInto(target, at, onBytes)
      if (at === target.byteLength) break
      if (this.canLand) {
        at = await this.land(target, at, options, onBytes)
        continue
      }
      // Woken once per READ_BATCH rather than per message (16-64 KiB each): each wake is a
      // promise, a timer and an abort listener.
      await this.fill(Math.min(target.byteLength - at, READ_BATCH), options, false)
    }
  }

  /** Copies buffered bytes into target from `at`; returns the new fill level. */
  private drainInto (target: Uint8Array, at: number, onBytes?: (n: number) => void): number {
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
    return at
  }

  /** Lets the source write into target from `at` until it is full or bytes are pushed; returns the new fill level. */
  private async land (target: Uint8Array, at: number, options: WaitOptions, onBytes?: (n: number) => void): Promise<number> {
    if (this.error != null) throw this.error
    if (this.ended) throw new StreamProtocolError(`stream ended ${target.byteLength - at} bytes short`)
    const landing = { target, at, onBytes }
    this.landing = landing
    try {
      await this.waitForData(options)
    } finally {
      this.landing = undefined
    }
    if (this.error != null) throw this.error
    return landing.at
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
    // Spread over several chunks (fill() made sure n are buffered): copied out.
    const out = new Uint8Array(n)
    this.drainInto(out, 0)
    return out
  }
}

/**
 * A ByteReader fed by a libp2p stream: it buffers what the stream receives
 * from the moment it is constructed (libp2p 3 streams emit `message` events
 * whether or not anyone listens, so a reader must be attached before the
 * first byte can arrive).
 */
export class StreamReader extends ByteReader {
  constructor (stream: Stream, maxBuffered: number) {
    super(maxBuffered)
    // A peer that writes and closes at once (a record server) may have closed before this reader was
    // attached: the bytes buffered then are replayed to the listener below. libp2p 3 can already say
    // readableEnded (its 'end' dispatched) with those bytes still buffered, and sends no 'end' after
    // the replay (seen on every direct capability read after dialProtocol), so the replay itself ends
    // the stream. Treating readableEnded alone as the end lost the record, and every read fell back to a DHT walk.
    const closedBefore = stream.readableEnded || stream.remoteWriteStatus === 'closed'
    let replaying = closedBefore ? stream.readBufferLength : 0
    if (closedBefore && replaying === 0) this.end()
    stream.addEventListener('message', (evt) => {
      const data: Uint8Array | Uint8ArrayList = evt.data
      // A Uint8ArrayList is kept as its parts: subarray() would copy every received byte once more.
      for (const bytes of data instanceof Uint8Array ? [data] : data) {
        const overflow = this.push(bytes)
        if (overflow !== undefined) { stream.abort(overflow); return }
        if (replaying > 0 && bytes.byteLength > 0) {
          replaying -= bytes.byteLength
          if (replaying <= 0) this.end()
        }
      }
    })
    stream.addEventListener('remoteCloseWrite', () => { this.end() })
    stream.addEventListener('end', () => { this.end() })
    stream.addEventListener('close', (evt) => { this.end(evt.error ?? undefined) })
  }
}

/**
 * One request/response byte stream of a kiln protocol, whatever carries it:
 * a libp2p stream (streamChannel) or a direct TLS channel (src/p2p/direct.ts).
 */
export interface ByteChannel {
  /** False once the channel can no longer carry a request. */
  readonly open: boolean
  readFrame: (maxBytes: number, options: WaitOptions) => Promise<Uint8Array | undefined>
  readInto: (target: Uint8Array, options: WaitOptions, onBytes?: (n: number) => void) => Promise<void>
  send: (bytes: Uint8Array, signal?: AbortSignal) => Promise<void>
  /**
   * Sends bytes and resolves once the channel no longer holds them, so
   * their memory can be filled again. Only where the carrier can tell (a
   * direct channel); a muxer keeps views of what it was given.
   */
  sendConsumed?: (bytes: Uint8Array, signal?: AbortSignal) => Promise<void>
  /** Closes this side and waits, at most until signal, for the peer's. */
  close: (signal?: AbortSignal) => Promise<void>
  abort: (err: Error) => void
}

/** A libp2p stream as a ByteChannel; `maxBuffered` bounds what it holds unread (see StreamReader). */
export function streamChannel (stream: Stream, maxBuffered: number): ByteChannel {
  const reader = new StreamReader(stream, maxBuffered)
  return {
    get open () { return stream.status === 'open' },
    readFrame: async (maxBytes, options) => await reader.readFrame(maxBytes, options),
    readInto: async (target, options, onBytes) => { await reader.readInto(target, options, onBytes) },
    send: async (bytes, signal) => { await sendAll(stream, bytes, signal) },
    close: async (signal) => { await stream.close({ signal }) },
    abort: (err) => { stream.abort(err) }
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
