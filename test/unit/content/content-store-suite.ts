/**
 * The contract every ContentStore must meet. Run it with a factory that gives
 * a fresh, empty store and a cleanup function.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ContentStore } from '../../../src/content/index.ts'
import { sha256Digest } from '../../../src/content/index.ts'

export interface StoreFixture { store: ContentStore, cleanup: () => Promise<void> }

async function collect (it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const c of it) parts.push(c)
  return Buffer.concat(parts)
}

async function * chunked (data: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < data.byteLength; i += size) yield data.subarray(i, i + size)
}

export function contentStoreSuite (name: string, make: () => Promise<StoreFixture>): void {
  describe(`ContentStore contract: ${name}`, () => {
    let fx: StoreFixture
    let store: ContentStore
    beforeEach(async () => { fx = await make(); store = fx.store })
    afterEach(async () => { await fx.cleanup() })

    it('ingests bytes and reads them back by digest', async () => {
      const data = randomBytes(100_000)
      const digest = sha256Digest(data)
      const info = await store.ingest(chunked(data, 7_000), { digest, size: data.length })
      expect(info).toEqual({ digest, size: data.length })
      expect(await store.has(digest)).toBe(true)
      expect(await store.info(digest)).toEqual({ digest, size: data.length })
      expect(Buffer.compare(await collect(store.read(digest)), data)).toBe(0)
      expect(Buffer.compare(Buffer.from(await store.readBytes(digest)), data)).toBe(0)
    })

    it('computes the digest when none is expected', async () => {
      const data = Buffer.from('hello kiln')
      const info = await store.ingest(data)
      expect(info.digest).toBe(sha256Digest(data))
    })

    it('reads ranges, including empty and final ones, and refuses ranges past the end', async () => {
      const data = randomBytes(10_000)
      const { digest } = await store.ingest(data)
      expect(Buffer.compare(await collect(store.read(digest, { offset: 100, length: 50 })), data.subarray(100, 150))).toBe(0)
      expect(Buffer.compare(await collect(store.read(digest, { offset: 9_000 })), data.subarray(9_000))).toBe(0)
      expect((await collect(store.read(digest, { offset: 10_000, length: 0 }))).length).toBe(0)
      await expect(collect(store.read(digest, { offset: 9_990, length: 11 }))).rejects.toMatchObject({ name: 'InvalidRangeError' })
      await expect(collect(store.read(digest, { offset: -1 }))).rejects.toMatchObject({ name: 'InvalidRangeError' })
    })

    it('reads a range into a caller\'s buffer chunk by chunk when asked (a store may also ignore it)', async () => {
      const data = randomBytes(10_000)
      const { digest } = await store.ingest(data)
      const buffer = new Uint8Array(1_000)
      const parts: Buffer[] = []
      for await (const chunk of store.read(digest, { offset: 123, length: 4_567, buffer })) {
        // Views of the caller's buffer, when the store uses it, are valid until the next chunk: copy now.
        if (chunk.buffer === buffer.buffer) expect(chunk.byteLength).toBeLessThanOrEqual(1_000)
        parts.push(Buffer.from(chunk))
      }
      expect(Buffer.compare(Buffer.concat(parts), data.subarray(123, 123 + 4_567))).toBe(0)
      await expect(collect(store.read(digest, { offset: 9_990, length: 11, buffer }))).rejects.toMatchObject({ name: 'InvalidRangeError' })
    })

    it('refuses a wrong digest and stores nothing', async () => {
      const data = randomBytes(1000)
      const wrong = sha256Digest('something else')
      await expect(store.ingest(data, { digest: wrong })).rejects.toMatchObject({ name: 'DigestMismatchError', expected: wrong })
      expect(await store.has(wrong)).toBe(false)
      expect(await store.has(sha256Digest(data))).toBe(false)
      const all = []
      for await (const b of store.walk()) all.push(b)
      expect(all).toEqual([])
    })

    it('refuses too many and too few bytes and stores nothing', async () => {
      const data = randomBytes(1000)
      await expect(store.ingest(chunked(data, 100), { size: 999 })).rejects.toMatchObject({ name: 'SizeMismatchError' })
      await expect(store.ingest(data, { size: 1001 })).rejects.toMatchObject({ name: 'SizeMismatchError' })
      expect(await store.has(sha256Digest(data))).toBe(false)
    })

    it('refuses a malformed digest', async () => {
      await expect(store.ingest(Buffer.from('x'), { digest: 'sha256:XYZ' as never })).rejects.toMatchObject({ name: 'InvalidDigestError' })
      await expect(store.info('md5:abc' as never)).rejects.toMatchObject({ name: 'InvalidDigestError' })
    })

    it('throws NotFoundError for an absent blob', async () => {
      const d = sha256Digest('absent')
      await expect(store.info(d)).rejects.toMatchObject({ name: 'NotFoundError' })
      await expect(collect(store.read(d))).rejects.toMatchObject({ name: 'NotFoundError' })
      expect(await store.has(d)).toBe(false)
    })

    it('is safe under concurrent ingests of the same blob', async () => {
      const data = randomBytes(300_000)
      const digest = sha256Digest(data)
      const results = await Promise.all(Array.from({ length: 8 }, async () => await store.ingest(chunked(data, 9_999), { digest })))
      for (const r of results) expect(r).toEqual({ digest, size: data.length })
      expect(Buffer.compare(await collect(store.read(digest)), data)).toBe(0)
    })

    it('re-ingesting a present blob succeeds, and a bad copy of it still fails', async () => {
      const data = randomBytes(500)
      const { digest } = await store.ingest(data)
      expect(await store.ingest(data, { digest })).toEqual({ digest, size: 500 })
      const bad = Buffer.from(data); bad[0] = (bad[0] ?? 0) ^ 1
      await expect(store.ingest(bad, { digest })).rejects.toMatchObject({ name: 'DigestMismatchError' })
      expect(Buffer.compare(await collect(store.read(digest)), data)).toBe(0)
    })

    it('deletes and walks', async () => {
      const a = await store.ingest(Buffer.from('a'))
      const b = await store.ingest(Buffer.from('bb'))
      const seen = []
      for await (const x of store.walk()) seen.push(x)
      expect(seen.sort((x, y) => x.size - y.size)).toEqual([a, b])
      expect(await store.delete(a.digest)).toBe(true)
      expect(await store.delete(a.digest)).toBe(false)
      expect(await store.has(a.digest)).toBe(false)
    })

    it('handles the empty blob', async () => {
      const info = await store.ingest(new Uint8Array(0), { size: 0 })
      expect(info.digest).toBe(sha256Digest(''))
      expect((await collect(store.read(info.digest))).length).toBe(0)
    })

    it('readBytes refuses blobs over its limit', async () => {
      const { digest } = await store.ingest(randomBytes(2048))
      await expect(store.readBytes(digest, 1024)).rejects.toMatchObject({ name: 'SizeMismatchError' })
    })

    it('ingests a finished file: the file becomes the blob; a wrong one stays where it was and stores nothing', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'kiln-ingest-file-'))
      try {
        const data = randomBytes(50_000)
        const digest = sha256Digest(data)
        const file = join(dir, 'upload')
        await writeFile(file, data)
        await expect(store.ingestFile(file, { digest: sha256Digest('other') })).rejects.toMatchObject({ name: 'DigestMismatchError' })
        await expect(store.ingestFile(file, { size: 49_999 })).rejects.toMatchObject({ name: 'SizeMismatchError' })
        expect(existsSync(file)).toBe(true)
        expect(await store.has(digest)).toBe(false)
        expect(await store.ingestFile(file, { digest, size: data.length })).toEqual({ digest, size: data.length })
        expect(existsSync(file)).toBe(false)
        expect(Buffer.compare(await collect(store.read(digest)), data)).toBe(0)
        // A file holding a blob already present is simply removed.
        await writeFile(file, data)
        expect(await store.ingestFile(file)).toEqual({ digest, size: data.length })
        expect(existsSync(file)).toBe(false)
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    })

    it('partial ingest: ranges in any order, resumable, verified on commit', async () => {
      const data = randomBytes(64_000)
      const digest = sha256Digest(data)
      let p = await store.openPartial(digest, data.length)
      await p.writeAt(32_000, data.subarray(32_000, 48_000))
      await p.writeAt(0, data.subarray(0, 16_000))
      await p.close()
      expect(await store.has(digest)).toBe(false)
      p = await store.openPartial(digest, data.length)
      expect(p.written()).toEqual([[0, 16_000], [32_000, 48_000]])
      await expect(p.commit()).rejects.toMatchObject({ name: 'SizeMismatchError' })
      await p.writeAt(16_000, data.subarray(16_000, 32_000))
      await p.writeAt(48_000, data.subarray(48_000))
      expect(p.written()).toEqual([[0, 64_000]])
      expect(await p.commit()).toEqual({ digest, size: data.length })
      expect(Buffer.compare(await collect(store.read(digest)), data)).toBe(0)
    })

    it('partial ingest: corrupted bytes are refused on commit and nothing is stored', async () => {
      const data = randomBytes(10_000)
      const digest = sha256Digest(data)
      const p = await store.openPartial(digest, data.length)
      const bad = Buffer.from(data); bad[5_000] = (bad[5_000] ?? 0) ^ 0xff
      await p.writeAt(0, bad)
      await expect(p.commit()).rejects.toMatchObject({ name: 'DigestMismatchError' })
      expect(await store.has(digest)).toBe(false)
      const again = await store.openPartial(digest, data.length)
      expect(again.written()).toEqual([])
      await again.abort()
    })

    it('partial ingest: a mismatch kept on request stays readable until aborted', async () => {
      const data = randomBytes(20_000)
      const digest = sha256Digest(data)
      const p = await store.openPartial(digest, data.length)
      const bad = Buffer.from(data); bad[15_000] = (bad[15_000] ?? 0) ^ 0xff
      await p.writeAt(10_000, bad.subarray(10_000))
      await p.writeAt(0, bad.subarray(0, 10_000))
      await expect(p.commit({ keepOnMismatch: true })).rejects.toMatchObject({ name: 'DigestMismatchError' })
      expect(await store.has(digest)).toBe(false)
      expect(Buffer.compare(await p.readAt(10_000, 10_000), bad.subarray(10_000))).toBe(0)
      // Into a caller's buffer: the result is a view of it.
      const into = Buffer.alloc(12_000)
      const view = await p.readAt(5_000, 10_000, into)
      expect(view.buffer).toBe(into.buffer)
      expect(Buffer.compare(view, bad.subarray(5_000, 15_000))).toBe(0)
      await expect(p.readAt(15_000, 10_000)).rejects.toMatchObject({ name: 'InvalidRangeError' })
      await p.abort()
      const again = await store.openPartial(digest, data.length)
      expect(again.written()).toEqual([])
      await again.abort()
    })

    it('partial ingest refuses writes outside the blob', async () => {
      const p = await store.openPartial(sha256Digest('x'), 10)
      await expect(p.writeAt(5, new Uint8Array(6))).rejects.toMatchObject({ name: 'InvalidRangeError' })
      await p.abort()
    })
  })
}
