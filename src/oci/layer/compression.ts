/**
 * Layer compression: detection by magic bytes, streaming decompression and
 * deterministic compression (fixed levels, gzip header without name or mtime,
 * fixed blocks compressed in parallel off the main thread).
 */
import { availableParallelism } from 'node:os'
import { Readable, pipeline } from 'node:stream'
import type { Transform } from 'node:stream'
import { promisify } from 'node:util'
import { constants, createGunzip, createZstdDecompress, gzip, zstdCompress } from 'node:zlib'
import { COMPRESSION_BLOCK_SIZE, GZIP_LEVEL, MAX_COMPRESSION_PARALLEL, ZSTD_LEVEL } from '../constants.ts'
import { LayerCompressionError } from '../errors.ts'
import type { LayerCompression } from '../media-types.ts'

const GZIP_MAGIC = [0x1f, 0x8b]
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd]
const XZ_MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]
const BZIP2_MAGIC = [0x42, 0x5a, 0x68]

function startsWith (data: Uint8Array, magic: number[]): boolean {
  return data.byteLength >= magic.length && magic.every((b, i) => data[i] === b)
}

/** Detects the compression of a layer from its first bytes (at least 6 for a sure answer). */
export function detectCompression (head: Uint8Array): LayerCompression {
  if (startsWith(head, GZIP_MAGIC)) return 'gzip'
  if (startsWith(head, ZSTD_MAGIC)) return 'zstd'
  if (startsWith(head, XZ_MAGIC)) throw new LayerCompressionError('xz-compressed layers are not supported')
  if (startsWith(head, BZIP2_MAGIC) && head[3] !== undefined && head[3] >= 0x31 && head[3] <= 0x39) {
    throw new LayerCompressionError('bzip2-compressed layers are not supported')
  }
  return 'none'
}

/** Reads the first bytes of a source and gives them back together with the rest of it. */
async function peek (source: AsyncIterable<Uint8Array>, n: number): Promise<{ head: Uint8Array, rest: AsyncIterable<Uint8Array> }> {
  const it = source[Symbol.asyncIterator]()
  const got: Uint8Array[] = []
  let size = 0
  let done = false
  while (size < n) {
    const r = await it.next()
    if (r.done === true) { done = true; break }
    got.push(r.value)
    size += r.value.byteLength
  }
  const head = Buffer.concat(got)
  const rest = {
    async * [Symbol.asyncIterator] () {
      try {
        if (head.byteLength > 0) yield head
        if (done) return
        for (;;) {
          const r = await it.next()
          if (r.done === true) return
          yield r.value
        }
      } finally {
        if (!done) await it.return?.()
      }
    }
  }
  return { head, rest }
}

function through (source: AsyncIterable<Uint8Array>, transform: Transform, what: string): AsyncIterable<Uint8Array> {
  // An error thrown by the source reaches us through the transform too; keep it as it was.
  let sourceError: { error: unknown } | undefined
  const guarded = async function * (): AsyncGenerator<Uint8Array> {
    try {
      yield * source
    } catch (error) {
      sourceError = { error }
      throw error
    }
  }
  const out = pipeline(Readable.from(guarded(), { objectMode: false }), transform, () => { /* errors surface on iteration */ })
  return {
    async * [Symbol.asyncIterator] () {
      try {
        for await (const chunk of out) yield chunk as Uint8Array
      } catch (err) {
        if (sourceError !== undefined) throw sourceError.error
        throw new LayerCompressionError(`${what} stream is corrupt or truncated: ${(err as Error).message}`, { cause: err })
      } finally {
        out.destroy()
      }
    }
  }
}

/** Decompresses a layer whose compression is detected from its magic bytes. */
export async function decompressDetected (source: AsyncIterable<Uint8Array>): Promise<{ compression: LayerCompression, tar: AsyncIterable<Uint8Array> }> {
  const { head, rest } = await peek(source, 6)
  const compression = detectCompression(head)
  return { compression, tar: decompress(rest, compression) }
}

export function decompress (source: AsyncIterable<Uint8Array>, compression: LayerCompression): AsyncIterable<Uint8Array> {
  switch (compression) {
    case 'none': return source
    case 'gzip': return through(source, createGunzip(), 'gzip')
    case 'zstd': return through(source, createZstdDecompress(), 'zstd')
  }
}

const gzipAsync = promisify(gzip)
const zstdAsync = promisify(zstdCompress)

const compressBlock: Record<Exclude<LayerCompression, 'none'>, (block: Buffer) => Promise<Buffer>> = {
  gzip: async block => await gzipAsync(block, { level: GZIP_LEVEL }),
  zstd: async block => await zstdAsync(block, { params: { [constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL, [constants.ZSTD_c_checksumFlag]: 1 } })
}

/**
 * Cuts the source into blocks of exactly `blockSize` bytes (the last one
 * shorter) and compresses up to `parallel` of them at once, yielding the
 * compressed blocks in order. Memory stays within (parallel + 1) blocks.
 * An error of the source is thrown as it was; one of the compressor
 * becomes a LayerCompressionError.
 */
export async function * compressBlocks (source: AsyncIterable<Uint8Array>, compression: Exclude<LayerCompression, 'none'>, blockSize = COMPRESSION_BLOCK_SIZE, parallel = compressionParallelism()): AsyncGenerator<Uint8Array> {
  const queue: Array<Promise<Buffer>> = []
  const start = (block: Buffer): void => {
    const p = compressBlock[compression](block).catch((err: unknown) => {
      throw new LayerCompressionError(`${compression} compression failed: ${(err as Error).message}`, { cause: err })
    })
    p.catch(() => {}) // awaited in order below; a failure while an earlier block is awaited is not unhandled
    queue.push(p)
  }
  let block = Buffer.allocUnsafe(blockSize)
  let filled = 0
  let started = 0
  for await (const chunk of source) {
    let off = 0
    while (off < chunk.byteLength) {
      const take = Math.min(blockSize - filled, chunk.byteLength - off)
      block.set(chunk.subarray(off, off + take), filled)
      filled += take
      off += take
      if (filled < blockSize) continue
      start(block)
      started++
      block = Buffer.allocUnsafe(blockSize)
      filled = 0
      while (queue.length >= parallel) yield await (queue.shift() as Promise<Buffer>)
    }
  }
  // An empty source still gives one (empty) member: a valid compressed stream.
  if (filled > 0 || started === 0) start(block.subarray(0, filled))
  while (queue.length > 0) yield await (queue.shift() as Promise<Buffer>)
}

/** Blocks compressed at once: the cores, at least 2, at most MAX_COMPRESSION_PARALLEL. */
export function compressionParallelism (): number {
  return Math.min(MAX_COMPRESSION_PARALLEL, Math.max(2, availableParallelism()))
}

/**
 * Compresses with fixed parameters so that the same tar always gives the
 * same bytes: fixed levels and block cuts (COMPRESSION_BLOCK_SIZE), each
 * gzip member's header with no name, mtime 0 and OS 3 (node:zlib's), each
 * zstd frame with its checksum.
 */
export function compress (source: AsyncIterable<Uint8Array>, compression: LayerCompression): AsyncIterable<Uint8Array> {
  if (compression === 'none') return source
  return compressBlocks(source, compression)
}
