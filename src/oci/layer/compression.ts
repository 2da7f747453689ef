/**
 * Layer compression: detection by magic bytes, streaming decompression and
 * deterministic compression (fixed levels, gzip header without name or mtime).
 */
import { Readable, pipeline } from 'node:stream'
import type { Transform } from 'node:stream'
import { constants, createGunzip, createGzip, createZstdCompress, createZstdDecompress } from 'node:zlib'
import { GZIP_LEVEL, ZSTD_LEVEL } from '../constants.ts'
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

/**
 * Compresses with fixed parameters so that the same tar always gives the
 * same bytes: node:zlib's gzip header carries no name and mtime 0, OS 3.
 */
export function compress (source: AsyncIterable<Uint8Array>, compression: LayerCompression): AsyncIterable<Uint8Array> {
  switch (compression) {
    case 'none': return source
    case 'gzip': return through(source, createGzip({ level: GZIP_LEVEL }), 'gzip')
    case 'zstd': return through(source, createZstdCompress({ params: { [constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL, [constants.ZSTD_c_checksumFlag]: 1 } }), 'zstd')
  }
}
