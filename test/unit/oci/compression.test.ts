import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { gunzipSync, zstdDecompressSync } from 'node:zlib'
import { decompress } from '../../../src/oci/index.ts'
import { compressBlocks } from '../../../src/oci/layer/compression.ts'
import { haveTools } from '../../helpers/tools.ts'
import { collect } from './helpers.ts'

/** Half random, half repetitive: compressible, and no two blocks alike. */
function sample (size: number): Buffer {
  const out = Buffer.alloc(size)
  randomBytes(size >> 1).copy(out)
  for (let i = size >> 1; i < size; i++) out[i] = (i * 7) % 251
  return out
}

async function * chunks (data: Buffer, sizes: number[]): AsyncGenerator<Uint8Array> {
  let off = 0
  let i = 0
  while (off < data.byteLength) {
    const n = sizes[i++ % sizes.length] as number
    yield data.subarray(off, off + n)
    off += n
  }
}

const GZIP_MEMBER = Buffer.from([0x1f, 0x8b, 0x08])

function memberCount (gz: Buffer): number {
  // Each member starts with the magic and has mtime 0, no name, OS 3: count the headers.
  const header = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00])
  let n = 0
  for (let at = gz.indexOf(header); at !== -1; at = gz.indexOf(header, at + 1)) n++
  return n
}

describe('block compression', () => {
  const BLOCK = 64 * 1024
  const data = sample(5 * BLOCK + 1234)

  it('gives the same bytes whatever the input chunking and parallelism, one gzip member per block', async () => {
    const a = await collect(compressBlocks(chunks(data, [data.byteLength]), 'gzip', BLOCK, 2))
    const b = await collect(compressBlocks(chunks(data, [1, 777, 65536, 100_000, 3]), 'gzip', BLOCK, 4))
    expect(b.equals(a)).toBe(true)
    expect(a.subarray(0, 3).equals(GZIP_MEMBER)).toBe(true)
    expect(memberCount(a)).toBe(6)
    expect(gunzipSync(a).equals(data)).toBe(true)
    expect((await collect(decompress(chunks(a, [4096]), 'gzip'))).equals(data)).toBe(true)
  })

  it.skipIf(!haveTools('gzip'))('is read by GNU gzip as one stream', async () => {
    const gz = await collect(compressBlocks(chunks(data, [10_000]), 'gzip', BLOCK, 3))
    const out = execFileSync('gzip', ['-dc'], { input: gz, maxBuffer: 64 * 1024 * 1024 })
    expect(createHash('sha256').update(out).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'))
  })

  it('writes zstd as concatenated frames that decompress to the input', async () => {
    const z = await collect(compressBlocks(chunks(data, [50_000]), 'zstd', BLOCK, 2))
    expect(zstdDecompressSync(z).equals(data)).toBe(true)
    expect((await collect(decompress(chunks(z, [999]), 'zstd'))).equals(data)).toBe(true)
  })

  it('gives one valid member for an empty input and for an input of exactly one block', async () => {
    const empty = await collect(compressBlocks(chunks(Buffer.alloc(0), [1]), 'gzip', BLOCK, 2))
    expect(gunzipSync(empty).byteLength).toBe(0)
    const one = await collect(compressBlocks(chunks(data.subarray(0, BLOCK), [BLOCK]), 'gzip', BLOCK, 2))
    expect(memberCount(one)).toBe(1)
    expect(gunzipSync(one).equals(data.subarray(0, BLOCK))).toBe(true)
  })

  it('throws the source error as it was', async () => {
    class Boom extends Error {}
    async function * failing (): AsyncGenerator<Uint8Array> {
      yield data.subarray(0, 3 * BLOCK)
      throw new Boom('source broke')
    }
    await expect(collect(compressBlocks(failing(), 'gzip', BLOCK, 2))).rejects.toBeInstanceOf(Boom)
  })
})
