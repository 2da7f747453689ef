import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { createFsContentStore, sha256Digest } from '../../../src/content/index.ts'

// The fetcher relies on the fs store hashing a partial as it is written (the
// prefix hash): these pin that the digest check still sees exactly the bytes
// last written, whatever the order and overlap of the writes.
describe('fs store partial: running prefix hash', () => {
  const dirs: string[] = []
  afterEach(async () => { for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true }) })
  const store = async (): Promise<Awaited<ReturnType<typeof createFsContentStore>>> => {
    const dir = await mkdtemp(join(tmpdir(), 'kiln-prefix-'))
    dirs.push(dir)
    return await createFsContentStore({ root: dir })
  }
  const blob = randomBytes(10 * 1024 * 1024 + 17)
  const digest = sha256Digest(blob)
  const chunks = (size: number): Array<[number, number]> => {
    const out: Array<[number, number]> = []
    for (let o = 0; o < blob.byteLength; o += size) out.push([o, Math.min(o + size, blob.byteLength)])
    return out
  }

  it('commits in-order, reversed and shuffled writes', async () => {
    for (const order of [(c: Array<[number, number]>) => c, (c: Array<[number, number]>) => [...c].reverse(), (c: Array<[number, number]>) => [c[2]!, c[0]!, c[3]!, c[1]!, ...c.slice(4)]]) {
      const s = await store()
      const p = await s.openPartial(digest, blob.byteLength)
      for (const [a, b] of order(chunks(1024 * 1024))) await p.writeAt(a, blob.subarray(a, b))
      expect(await p.commit()).toEqual({ digest, size: blob.byteLength })
      expect(Buffer.from(await s.readBytes(digest, 64 << 20)).equals(blob)).toBe(true)
    }
  })

  it('hashes the bytes last written when a range is written twice', async () => {
    const s = await store()
    const p = await s.openPartial(digest, blob.byteLength)
    const bad = Buffer.from(blob.subarray(0, 3 << 20)).fill(1)
    // a wrong pending range, then the right one over it; a wrong prefix, then the right one over it
    await p.writeAt(2 << 20, bad.subarray(0, 1 << 20))
    await p.writeAt(0, bad.subarray(0, 2 << 20))
    await p.writeAt(1 << 19, blob.subarray(1 << 19, 3 << 20))
    await p.writeAt(0, blob.subarray(0, 1 << 19))
    await p.writeAt(3 << 20, blob.subarray(3 << 20))
    expect(await p.commit()).toEqual({ digest, size: blob.byteLength })
  })

  it('still refuses wrong bytes written in order', async () => {
    const s = await store()
    const p = await s.openPartial(digest, blob.byteLength)
    const wrong = Buffer.from(blob)
    wrong.writeUInt8(wrong.readUInt8(wrong.byteLength - 1) ^ 0xff, wrong.byteLength - 1)
    for (const [a, b] of chunks(4 << 20)) await p.writeAt(a, wrong.subarray(a, b))
    await expect(p.commit()).rejects.toMatchObject({ name: 'DigestMismatchError' })
    expect(await s.has(digest)).toBe(false)
  })

  it('commits a resumed partial (hashed from the file)', async () => {
    const s = await store()
    const p = await s.openPartial(digest, blob.byteLength)
    await p.writeAt(0, blob.subarray(0, 5 << 20))
    await p.close()
    const q = await s.openPartial(digest, blob.byteLength)
    expect(q.written()).toEqual([[0, 5 << 20]])
    await q.writeAt(5 << 20, blob.subarray(5 << 20))
    expect(await q.commit()).toEqual({ digest, size: blob.byteLength })
  })
})
