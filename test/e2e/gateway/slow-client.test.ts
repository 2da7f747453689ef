/**
 * Request bodies are idle-timed, not time-limited, over a real socket:
 * a slow but steady upload succeeds however long it takes; one that sends
 * nothing for the idle timeout gets 408 and its connection is closed, and
 * a chunked upload keeps what arrived so the client can resume. The idle
 * timeout is shortened to IDLE_MS so that this runs in seconds.
 *
 * `KILN_SLOW_UPLOAD_FULL=1` also runs the case against a `kiln
 * gateway` process with its default timeouts: a 40 MiB PATCH at 100 KB/s
 * (about 7 minutes; node's default whole-request timeout used to cut it off
 * with 408 at 300 s).
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rawRequest } from './raw-client.ts'
import { serveGateway } from './serve.ts'
import type { ServedGateway } from './serve.ts'
import { startKiln } from './process.ts'

const IDLE_MS = 500
const FULL = process.env.KILN_SLOW_UPLOAD_FULL === '1'
const sha = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** Sends `data` in pieces of `piece` bytes, one every `everyMs`. */
async function trickle (send: (b: Uint8Array) => Promise<boolean>, data: Buffer, piece: number, everyMs: number): Promise<void> {
  for (let off = 0; off < data.byteLength; off += piece) {
    if (!await send(data.subarray(off, off + piece))) throw new Error(`connection closed after ${off} bytes`)
    if (off + piece < data.byteLength) await sleep(everyMs)
  }
}

async function startSession (port: number, repo: string): Promise<string> {
  const start = await rawRequest(port, 'POST', `/v2/${repo}/blobs/uploads/`, { 'content-length': '0' })
  const r = await start.response
  start.socket.destroy()
  expect(r.status).toBe(202)
  return r.headers.location as string
}

describe(`request bodies idle-timed at ${IDLE_MS} ms`, () => {
  let served: ServedGateway
  let port: number

  beforeAll(async () => {
    served = await serveGateway({ bodyIdleTimeoutMs: IDLE_MS })
    port = Number(served.hostPort.split(':')[1])
  })
  afterAll(async () => { await served?.stop() })

  it('takes a slow but steady upload that lasts many idle timeouts', async () => {
    const data = randomBytes(40 * 16 * 1024)
    const location = await startSession(port, 'slow/steady')
    const started = Date.now()
    const patch = await rawRequest(port, 'PATCH', location, { 'content-length': String(data.byteLength), 'content-type': 'application/octet-stream' })
    await trickle(patch.send, data, 16 * 1024, IDLE_MS / 5)
    const r = await patch.response
    patch.socket.destroy()
    expect(r.status, r.body).toBe(202)
    expect(r.headers.range).toBe(`0-${data.byteLength - 1}`)
    expect(Date.now() - started).toBeGreaterThan(7 * IDLE_MS)
    const put = await rawRequest(port, 'PUT', `${location}?digest=${sha(data)}`, { 'content-length': '0' })
    expect((await put.response).status).toBe(201)
    put.socket.destroy()
  })

  it('cuts off a chunk that stops arriving with 408, keeps what came, and lets the client resume', async () => {
    const data = randomBytes(256 * 1024)
    const location = await startSession(port, 'slow/stalled')
    const patch = await rawRequest(port, 'PATCH', location, { 'content-length': String(data.byteLength), 'content-type': 'application/octet-stream' })
    const sentAt = Date.now()
    await patch.send(data.subarray(0, 10_000))
    const r = await patch.response
    expect(r.status).toBe(408)
    expect(JSON.parse(r.body)).toMatchObject({ errors: [{ code: 'UNKNOWN', message: expect.stringMatching(/no request body bytes/) }] })
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(IDLE_MS - 50)
    // The stalled client is disconnected: after the response, an idle period at most.
    await patch.closed
    expect(Date.now() - sentAt).toBeLessThan(4 * IDLE_MS + 2_000)

    const status = await rawRequest(port, 'GET', location, {})
    expect((await status.response).headers.range).toBe('0-9999')
    status.socket.destroy()
    const rest = await rawRequest(port, 'PATCH', location, { 'content-length': String(data.byteLength - 10_000), 'content-range': `10000-${data.byteLength - 1}` })
    await rest.send(data.subarray(10_000))
    expect((await rest.response).status).toBe(202)
    rest.socket.destroy()
    const put = await rawRequest(port, 'PUT', `${location}?digest=${sha(data)}`, { 'content-length': '0' })
    expect((await put.response).status).toBe(201)
    put.socket.destroy()
  })

  it('cuts off a stalled monolithic push and stores nothing', async () => {
    const data = randomBytes(64 * 1024)
    const push = await rawRequest(port, 'POST', `/v2/slow/mono/blobs/uploads/?digest=${sha(data)}`, { 'content-length': String(data.byteLength) })
    await push.send(data.subarray(0, 1000))
    expect((await push.response).status).toBe(408)
    await push.closed
    const head = await rawRequest(port, 'HEAD', `/v2/slow/mono/blobs/${sha(data)}`, {})
    head.socket.end()
    await head.closed
    expect(await readdir(join(served.dir, 'store', 'ingest'))).toEqual([])
  })
})

describe.skipIf(!FULL)('the issue\'s slow upload: 40 MiB at 100 KB/s through `kiln gateway`', () => {
  it('succeeds after more than 300 s', { timeout: 900_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kiln-gw-slow-'))
    const gw = await startKiln<{ url: string }>(['--data-dir', join(dir, 'data'), '--log-level', 'warn', 'gateway', '--listen', '127.0.0.1:0', '--anonymous-push', '--json'], { env: { HOME: dir } })
    try {
      const gwPort = Number(new URL(gw.ready.url).port)
      const data = randomBytes(40 * 1024 * 1024)
      const location = await startSession(gwPort, 'slow/full')
      const started = Date.now()
      const patch = await rawRequest(gwPort, 'PATCH', location, { 'content-length': String(data.byteLength) })
      await trickle(patch.send, data, 10 * 1024, 100)
      const r = await patch.response
      patch.socket.destroy()
      const seconds = (Date.now() - started) / 1000
      console.log(`40 MiB PATCH at 100 KB/s: ${r.status} after ${seconds.toFixed(0)} s`)
      expect(r.status).toBe(202)
      expect(seconds).toBeGreaterThan(300)
    } finally {
      await gw.stop()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
