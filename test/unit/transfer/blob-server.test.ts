import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type { Connection, StreamHandler } from '@libp2p/interface'
import { BlobRequestSchema, BlobResponseSchema } from '../../../protocols/blob.ts'
import type { BlobResponse } from '../../../protocols/blob.ts'
import { BLOB_MAX_HEADER_BYTES, BLOB_MAX_RANGE_BYTES, BLOB_PROTOCOL } from '../../../protocols/constants.ts'
import type { BlobReader, Digest } from '../../../src/content/index.ts'
import { DirectChannels } from '../../../src/p2p/index.ts'
import type { KilnNode } from '../../../src/p2p/index.ts'
import { encodeFrame, jsonFrame } from '../../../src/p2p/stream-io.ts'
import { createBlobServer } from '../../../src/transfer/blob-server.ts'
import { FakeStream } from '../p2p/fake-stream.ts'

const blob = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff)
const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}` as Digest
const absent = `sha256:${'0'.repeat(64)}`

const store = {
  info: async (d: Digest) => {
    if (d !== digest) throw Object.assign(new Error('not found'), { name: 'NotFoundError' })
    return { digest, size: blob.byteLength }
  },
  read: (_d: Digest, o?: { offset?: number, length?: number }) => (async function * () {
    const start = o?.offset ?? 0
    const end = start + (o?.length ?? blob.byteLength - start)
    // two pieces, as a file read would give
    const mid = Math.floor((start + end) / 2)
    yield blob.subarray(start, mid)
    yield blob.subarray(mid, end)
  })()
} as unknown as BlobReader

/** Starts a server on a fake node and returns a function that runs its handler over one stream. */
async function serve (): Promise<{ run: (stream: FakeStream) => Promise<void>, stats: () => { requests: number, bytesServed: number } }> {
  let handler: StreamHandler | undefined
  const node = {
    handle: async (protocol: string, h: StreamHandler) => { expect(protocol).toBe(BLOB_PROTOCOL); handler = h },
    unhandle: async () => {},
    services: { direct: new DirectChannels() }
  } as unknown as KilnNode
  const server = createBlobServer({ node, store })
  await server.start()
  const connection = { remotePeer: { toString: () => 'peer-a' } } as unknown as Connection
  return { run: async (stream) => { await handler!(stream.asStream(), connection) }, stats: server.stats }
}

/** Splits what the server sent into responses, each with the bytes that followed an `ok`. */
function responses (out: Uint8Array): Array<{ header: BlobResponse, body: Uint8Array }> {
  const res: Array<{ header: BlobResponse, body: Uint8Array }> = []
  let at = 0
  while (at < out.byteLength) {
    const n = ((out[at] ?? 0) << 8) | (out[at + 1] ?? 0)
    const header = BlobResponseSchema.parse(JSON.parse(new TextDecoder().decode(out.subarray(at + 2, at + 2 + n))))
    at += 2 + n
    const len = header.status === 'ok' ? header.length : 0
    res.push({ header, body: out.subarray(at, at + len) })
    at += len
  }
  return res
}

describe('blob protocol frames', () => {
  it('request and response schemas: bounds and no unknown fields', () => {
    expect(BlobRequestSchema.safeParse({ digest, offset: 0, length: BLOB_MAX_RANGE_BYTES }).success).toBe(true)
    expect(BlobRequestSchema.safeParse({ digest, offset: 0, length: BLOB_MAX_RANGE_BYTES + 1 }).success).toBe(false)
    expect(BlobRequestSchema.safeParse({ digest, offset: -1, length: 1 }).success).toBe(false)
    expect(BlobRequestSchema.safeParse({ digest: 'sha256:ABC', offset: 0, length: 1 }).success).toBe(false)
    expect(BlobRequestSchema.safeParse({ digest, offset: 0, length: 1, extra: 1 }).success).toBe(false)
    expect(BlobResponseSchema.safeParse({ status: 'ok', size: 10, offset: 0, length: 10 }).success).toBe(true)
    expect(BlobResponseSchema.safeParse({ status: 'ok', size: 10, offset: 0 }).success).toBe(false)
    expect(BlobResponseSchema.safeParse({ status: 'not-found', size: 1 }).success).toBe(false)
    expect(BlobResponseSchema.safeParse({ status: 'teapot' }).success).toBe(false)
  })

  it('serves ranges, size probes, not-found and invalid-range on one stream, in order', async () => {
    const { run, stats } = await serve()
    const s = new FakeStream()
    for (const req of [
      { digest, offset: 100, length: 300 },
      { digest, offset: 0, length: 0 },
      { digest: absent, offset: 0, length: 10 },
      { digest, offset: 990, length: 11 },
      { digest, offset: 999, length: 1 }
    ]) s.push(jsonFrame(req))
    s.endRemote()
    await run(s)
    const res = responses(s.output())
    expect(res.map(r => r.header)).toEqual([
      { status: 'ok', size: 1000, offset: 100, length: 300 },
      { status: 'ok', size: 1000, offset: 0, length: 0 },
      { status: 'not-found' },
      { status: 'invalid-range', size: 1000 },
      { status: 'ok', size: 1000, offset: 999, length: 1 }
    ])
    expect(Buffer.from(res[0]!.body).equals(Buffer.from(blob.subarray(100, 400)))).toBe(true)
    expect([...res[4]!.body]).toEqual([999 & 0xff])
    expect(s.closed).toBe(true)
    expect(stats()).toMatchObject({ requests: 5, bytesServed: 301 })
  })

  it('answers a malformed request with bad-request and serves nothing more on that stream', async () => {
    const { run } = await serve()
    const s = new FakeStream()
    s.push(jsonFrame({ digest, offset: 0, length: 10, extra: true }))
    s.push(jsonFrame({ digest, offset: 0, length: 10 }))
    s.endRemote()
    await run(s)
    const res = responses(s.output())
    expect(res).toHaveLength(1)
    expect(res[0]!.header.status).toBe('bad-request')
  })

  it('aborts a stream whose header is over the limit, or that is not JSON', async () => {
    const { run } = await serve()
    const big = new FakeStream()
    big.push(encodeFrame(new Uint8Array(BLOB_MAX_HEADER_BYTES + 1).fill(0x20)))
    await run(big)
    expect(big.abortedWith?.name).toBe('StreamProtocolError')
    expect(big.output().byteLength).toBe(0)
    const junk = new FakeStream()
    junk.push(encodeFrame(Uint8Array.of(0xff, 0x00)))
    await run(junk)
    expect(junk.abortedWith?.name).toBe('StreamProtocolError')
  })

  it('aborts a client that floods requests beyond two headers of unread bytes', async () => {
    const { run } = await serve()
    const s = new FakeStream()
    const running = run(s)
    s.push(new Uint8Array(2 * BLOB_MAX_HEADER_BYTES + 1))
    await running
    expect(s.abortedWith?.name).toBe('StreamProtocolError')
  })
})
