import { mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { sha256Digest } from '../../../src/content/index.ts'
import { ANNOUNCE_STEP, PrefixHasher, WORKER_MIN_BYTES } from '../../../src/content/prefix-hasher.ts'

describe('prefix hasher (worker thread)', () => {
  const dirs: string[] = []
  afterEach(async () => { for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true }) })
  const file = async (): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), 'kiln-hasher-'))
    dirs.push(dir)
    return join(dir, 'data')
  }
  const blob = randomBytes(3 * ANNOUNCE_STEP + 5)
  const S = ANNOUNCE_STEP

  it('hashes on the worker what is written, in order or not, and again from 0 after an overwrite', async () => {
    const path = await file()
    const fh = await open(path, 'w+')
    const hasher = new PrefixHasher(path, blob.byteLength, 0)
    expect(hasher.onWorker).toBe(true)
    const prefixAfter = (ends: Array<[number, number]>): number => {
      let end = 0
      for (const [a, b] of ends.sort((x, y) => x[0] - y[0])) if (a <= end) end = Math.max(end, b)
      return end
    }
    const written: Array<[number, number]> = []
    const write = async (a: number, bytes: Uint8Array): Promise<void> => {
      await fh.write(bytes, 0, bytes.byteLength, a)
      written.push([a, a + bytes.byteLength])
      hasher.wrote(a, prefixAfter(written))
    }
    await write(S, blob.subarray(S, 2 * S))
    await write(0, Buffer.alloc(S, 1)) // wrong bytes the worker hashes...
    await new Promise(resolve => setTimeout(resolve, 300))
    await write(0, blob.subarray(0, S)) // ...then written again: a new generation
    await write(2 * S, blob.subarray(2 * S))
    await fh.close()
    expect(`sha256:${await hasher.digest(blob.byteLength)}`).toBe(sha256Digest(blob))
    expect(hasher.onWorker).toBe(true)
  })

  it('hashes what a resumed file already holds', async () => {
    const path = await file()
    const fh = await open(path, 'w+')
    await fh.write(blob, 0, blob.byteLength, 0)
    await fh.close()
    const hasher = new PrefixHasher(path, blob.byteLength, blob.byteLength)
    expect(`sha256:${await hasher.digest(blob.byteLength)}`).toBe(sha256Digest(blob))
    expect(hasher.onWorker).toBe(true)
  })

  it('hashes a small file on the calling thread', async () => {
    const path = await file()
    const small = blob.subarray(0, 1000)
    const fh = await open(path, 'w+')
    await fh.write(small, 0, small.byteLength, 0)
    await fh.close()
    const hasher = new PrefixHasher(path, small.byteLength, small.byteLength)
    expect(hasher.onWorker).toBe(false)
    expect(`sha256:${await hasher.digest(small.byteLength)}`).toBe(sha256Digest(small))
  })

  it('reports a file shorter than asked as a failure of the worker and still hashes by itself', async () => {
    const path = await file()
    const fh = await open(path, 'w+')
    await fh.write(blob, 0, WORKER_MIN_BYTES, 0)
    await fh.close()
    const hasher = new PrefixHasher(path, blob.byteLength, WORKER_MIN_BYTES)
    expect(`sha256:${await hasher.digest(WORKER_MIN_BYTES)}`).toBe(sha256Digest(blob.subarray(0, WORKER_MIN_BYTES)))
    const short = new PrefixHasher(path, blob.byteLength, 0)
    // asks for more than the file holds: the worker fails the job, the caller hashes what there is
    expect(`sha256:${await short.digest(blob.byteLength)}`).toBe(sha256Digest(blob.subarray(0, WORKER_MIN_BYTES)))
    expect(short.onWorker).toBe(false)
  })
})
