/**
 * Byte inputs of the tar reader: a chunked stream (ByteReader) or a file
 * read at positions (FileByteInput, where skipping a body is a seek).
 */
import type { FileHandle } from 'node:fs/promises'
import { COPY_CHUNK_SIZE } from '../constants.ts'

export interface ByteInput {
  /** Bytes consumed so far: the offset of the next byte in the input. */
  readonly offset: number
  /** Exactly n bytes, or fewer only when the input ended first. */
  read: (n: number) => Promise<Uint8Array>
  /** Up to n bytes in chunks; stops early only when the input ends. */
  stream: (n: number) => AsyncGenerator<Uint8Array>
  /** Discards up to n bytes; returns how many were discarded. */
  skip: (n: number) => Promise<number>
  /** Consumes the rest of the input. */
  drain: () => Promise<void>
  close: () => Promise<void>
}

/** Pulls exact byte counts out of a chunked async source without copying more than needed. */
export class ByteReader implements ByteInput {
  offset = 0
  private readonly it: AsyncIterator<Uint8Array>
  private chunks: Uint8Array[] = []
  private buffered = 0
  private ended = false

  constructor (source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]()
  }

  /** Pulls until at least n bytes are buffered or the source ends; returns the bytes available. */
  private async fill (n: number): Promise<number> {
    while (this.buffered < n && !this.ended) {
      const r = await this.it.next()
      if (r.done === true) { this.ended = true; break }
      if (r.value.byteLength === 0) continue
      this.chunks.push(r.value)
      this.buffered += r.value.byteLength
    }
    return Math.min(this.buffered, n)
  }

  /** Exactly n bytes, or fewer only when the source ended first. */
  async read (n: number): Promise<Uint8Array> {
    const got = await this.fill(n)
    const first = this.chunks[0]
    if (first !== undefined && first.byteLength >= got) {
      const out = first.subarray(0, got)
      this.consume(got)
      return out
    }
    const out = new Uint8Array(got)
    let off = 0
    while (off < got) {
      const c = this.chunks[0] as Uint8Array
      const take = Math.min(c.byteLength, got - off)
      out.set(c.subarray(0, take), off)
      off += take
      this.consume(take)
    }
    return out
  }

  /** Yields up to n bytes in the chunks they arrive in; stops early only when the source ends. */
  async * stream (n: number): AsyncGenerator<Uint8Array> {
    let left = n
    while (left > 0) {
      if (this.buffered === 0 && (await this.fill(1)) === 0) return
      const c = this.chunks[0] as Uint8Array
      const take = Math.min(c.byteLength, left)
      const out = c.subarray(0, take)
      this.consume(take)
      left -= take
      yield out
    }
  }

  /** Discards up to n bytes; returns how many were discarded. */
  async skip (n: number): Promise<number> {
    let done = 0
    for await (const c of this.stream(n)) done += c.byteLength
    return done
  }

  /** Reads and discards everything left in the source. */
  async drain (): Promise<void> {
    while (await this.skip(1024 * 1024) > 0) { /* keep going */ }
  }

  /** Stops pulling from the source (its finally blocks run). */
  async close (): Promise<void> {
    if (!this.ended) {
      this.ended = true
      await this.it.return?.()
    }
  }

  private consume (n: number): void {
    this.buffered -= n
    this.offset += n
    while (n > 0) {
      const c = this.chunks[0] as Uint8Array
      if (c.byteLength <= n) {
        this.chunks.shift()
        n -= c.byteLength
      } else {
        this.chunks[0] = c.subarray(n)
        n = 0
      }
    }
  }
}

/** A region of an open file read at positions; the caller keeps ownership of the handle. */
export class FileByteInput implements ByteInput {
  offset: number
  private readonly fh: FileHandle
  private readonly end: number

  constructor (fh: FileHandle, start: number, end: number) {
    this.fh = fh
    this.offset = start
    this.end = end
  }

  async read (n: number): Promise<Uint8Array> {
    const want = Math.min(n, this.end - this.offset)
    const buf = Buffer.allocUnsafe(want)
    let got = 0
    while (got < want) {
      const { bytesRead } = await this.fh.read(buf, got, want - got, this.offset + got)
      if (bytesRead === 0) break
      got += bytesRead
    }
    this.offset += got
    return buf.subarray(0, got)
  }

  async * stream (n: number): AsyncGenerator<Uint8Array> {
    let left = Math.min(n, this.end - this.offset)
    while (left > 0) {
      const chunk = await this.read(Math.min(left, COPY_CHUNK_SIZE))
      if (chunk.byteLength === 0) return
      left -= chunk.byteLength
      yield chunk
    }
  }

  async skip (n: number): Promise<number> {
    const step = Math.min(n, this.end - this.offset)
    this.offset += step
    return step
  }

  async drain (): Promise<void> {
    this.offset = this.end
  }

  async close (): Promise<void> { /* the caller owns the handle */ }
}
