/**
 * A blob served while it arrives (src/gateway/arriving.ts), over a real fs
 * store's partial: a response never carries its last byte before the blob
 * is verified and committed (whole blob or range), a reader that sent bytes
 * of a partial that failed its digest check is cut, a late reader starts
 * from what has arrived, and a failed fetch fails its readers.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createFsContentStore } from '../../../src/content/fs-store.ts'
import { sha256Digest } from '../../../src/content/digest.ts'
import type { ContentStore } from '../../../src/content/index.ts'
import { ArrivalFailedError, ArrivingBlobState } from '../../../src/gateway/arriving.ts'
import { STREAM_CHUNK } from '../../../src/gateway/constants.ts'

const bytes = randomBytes(1000)
const digest = sha256Digest(bytes)

/** Resolves after pending I/O callbacks and promise jobs have run once. */
const settleTurn = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

describe('ArrivingBlobState', () => {
  let dir: string
  let store: ContentStore
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-arriving-'))
    store = await createFsContentStore({ root: join(dir, 'store') })
  })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('serves the arrived prefix but holds a range\'s last byte until the blob is committed', async () => {
    const partial = await store.openPartial(digest, bytes.byteLength)
    const state = new ArrivingBlobState(digest, partial)
    const reader = state.read(store, { offset: 100, length: 200 })[Symbol.asyncIterator]()
    await partial.writeAt(0, bytes.subarray(0, 500))
    state.changed()
    const first = await reader.next()
    expect(Buffer.from(first.value as Uint8Array)).toEqual(bytes.subarray(100, 299))
    let last: IteratorResult<Uint8Array> | undefined
    const pending = reader.next().then(r => { last = r })
    await partial.writeAt(500, bytes.subarray(500))
    state.changed()
    await settleTurn()
    expect(last).toBeUndefined()
    await partial.commit()
    state.settle(true)
    await pending
    expect(Buffer.from(last?.value as Uint8Array)).toEqual(bytes.subarray(299, 300))
    expect((await reader.next()).done).toBe(true)
    expect(await state.done).toBe(true)

    // A reader arriving after the commit reads the store.
    const late: Uint8Array[] = []
    for await (const c of state.read(store)) late.push(c)
    expect(Buffer.concat(late)).toEqual(bytes)
  })

  it('cuts a reader that sent bytes of a partial that failed its digest check, and restarts one that had sent none', async () => {
    let partial = await store.openPartial(digest, bytes.byteLength)
    const state = new ArrivingBlobState(digest, partial)
    const sent = state.read(store)[Symbol.asyncIterator]()
    const wrong = Buffer.from(bytes)
    wrong[0] = (wrong[0] ?? 0) ^ 0xff
    await partial.writeAt(0, wrong)
    state.changed()
    expect(Buffer.from((await sent.next()).value as Uint8Array)).toEqual(wrong.subarray(0, 999))
    const fresh = state.read(store, { offset: 0, length: 10 })
    await expect(partial.commit({ keepOnMismatch: true })).rejects.toThrow()
    state.mismatched(['12D3KooWliar'])
    await partial.abort()
    partial = await store.openPartial(digest, bytes.byteLength)
    state.attach(partial)
    await expect(sent.next()).rejects.toThrow(ArrivalFailedError)
    await partial.writeAt(0, bytes)
    state.changed()
    await partial.commit()
    state.settle(true)
    const got: Uint8Array[] = []
    for await (const c of fresh) got.push(c)
    expect(Buffer.concat(got)).toEqual(bytes.subarray(0, 10))
  })

  it('fails its readers when the fetch fails', async () => {
    const partial = await store.openPartial(digest, bytes.byteLength)
    const state = new ArrivingBlobState(digest, partial)
    const reader = state.read(store)[Symbol.asyncIterator]()
    const failed = expect(reader.next()).rejects.toThrow(/no provider/)
    state.settle(false, new Error('no provider'))
    await failed
    await partial.abort()
    expect(await state.done).toBe(false)
    expect(state.failure?.message).toBe('no provider')
  })
  it('with reuseBuffers, fills two buffers in turn and still delivers every byte in order', async () => {
    const big = randomBytes(3 * STREAM_CHUNK + 1234)
    const bigDigest = sha256Digest(big)
    const partial = await store.openPartial(bigDigest, big.byteLength)
    const state = new ArrivingBlobState(bigDigest, partial)
    const reader = state.read(store, undefined, { reuseBuffers: true })[Symbol.asyncIterator]()
    await partial.writeAt(0, big)
    state.changed()
    // The caller is done with a chunk once it asks for the one after the next: copy each before that.
    const chunks: Uint8Array[] = []
    const copies: Buffer[] = []
    for (let i = 0; i < 3; i++) {
      const next = await reader.next()
      chunks.push(next.value as Uint8Array)
      copies.push(Buffer.from(next.value as Uint8Array))
    }
    const [a, b, c] = chunks as [Uint8Array, Uint8Array, Uint8Array]
    expect(a.buffer).toBe(c.buffer)
    expect(a.buffer).not.toBe(b.buffer)
    const rest = reader.next()
    await partial.commit()
    state.settle(true)
    for (let r = await rest; r.done !== true; r = await reader.next()) copies.push(Buffer.from(r.value))
    expect(Buffer.concat(copies).equals(big)).toBe(true)
  })
})
