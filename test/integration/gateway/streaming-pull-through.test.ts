/**
 * Streaming pull-through over a real libp2p network on loopback: a gateway
 * whose store lacks a blob that only one peer holds serves it while the
 * fetch runs. The holder's store is gated (reads past half the blob wait
 * until the test opens the gate), so "the first bytes reached the client
 * before the fetch ended" is a fact of the test, not a timing. A holder that
 * sends wrong bytes makes the client's transfer fail short of its
 * Content-Length, stores nothing, and is named in the log. Two clients, the
 * second joining while the first is being served, share one fetch.
 */
import { createHash } from 'node:crypto'
import { request } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { ContentStore, Digest } from '../../../src/content/index.ts'
import { createRefStore } from '../../../src/content/refs.ts'
import { openDb } from '../../../src/db/index.ts'
import type { KilnDb } from '../../../src/db/index.ts'
import { chainPullThrough, createGateway, createNetworkPullThrough } from '../../../src/gateway/index.ts'
import type { Gateway, GatewayLogger } from '../../../src/gateway/index.ts'
import { corruptingStore, randomBlob, startPeers } from '../transfer/helpers.ts'
import type { Peer } from '../transfer/helpers.ts'

const MiB = 1024 * 1024

interface LogEntry { level: string, obj: Record<string, unknown>, msg: string | undefined }

/** Reads past `from` wait for `gate.open`; earlier ones are served at once. */
function gatedStore (inner: ContentStore, from: number, gate: { opened: Promise<void> }): ContentStore {
  return {
    ...inner,
    read: (digest, options) => (async function * () {
      if ((options?.offset ?? 0) >= from) await gate.opened
      yield * inner.read(digest, options)
    })()
  }
}

function makeGate (): { opened: Promise<void>, open: () => void } {
  let open: () => void = () => {}
  const opened = new Promise<void>(resolve => { open = resolve })
  return { opened, open }
}

/** A GET whose body is followed chunk by chunk: `firstBytes` resolves at the first, `ended` when the response closes (complete or cut). */
function follow (url: string): { head: Promise<{ status: number, headers: IncomingHttpHeaders }>, firstBytes: Promise<number>, ended: Promise<{ bytes: number, sha256: string, complete: boolean }> } {
  let onHead: (h: { status: number, headers: IncomingHttpHeaders }) => void = () => {}
  let onFirst: (n: number) => void = () => {}
  const head = new Promise<{ status: number, headers: IncomingHttpHeaders }>(resolve => { onHead = resolve })
  const firstBytes = new Promise<number>(resolve => { onFirst = resolve })
  const ended = new Promise<{ bytes: number, sha256: string, complete: boolean }>((resolve, reject) => {
    const req = request(url, res => {
      onHead({ status: res.statusCode ?? 0, headers: res.headers })
      const hash = createHash('sha256')
      let bytes = 0
      res.on('data', (chunk: Buffer) => {
        if (bytes === 0) onFirst(chunk.byteLength)
        bytes += chunk.byteLength
        hash.update(chunk)
      })
      res.on('error', () => { /* reported by close: complete stays false */ })
      res.on('close', () => { resolve({ bytes, sha256: `sha256:${hash.digest('hex')}`, complete: res.complete }) })
    })
    req.on('error', reject)
    req.end()
  })
  return { head, firstBytes, ended }
}

describe('streaming pull-through from the peer network', () => {
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })

  /** A holder (peer 0, its store wrapped) and a gateway on peer 1 that pulls through the network. */
  async function setup (wrap: (s: ContentStore) => ContentStore, blob: { bytes: Uint8Array, digest: Digest }): Promise<{ holder: Peer, me: Peer, url: string, logs: LogEntry[], fetches: () => number, settled: (pred: (e: LogEntry) => boolean) => Promise<LogEntry> }> {
    const net = await startPeers(2, (i, s) => i === 0 ? wrap(s) : s)
    cleanups.push(net.cleanup)
    const [holder, me] = net.peers as [Peer, Peer]
    await holder.store.ingest(blob.bytes, { digest: blob.digest })
    const logs: LogEntry[] = []
    const watchers: Array<{ pred: (e: LogEntry) => boolean, resolve: (e: LogEntry) => void }> = []
    const at = (level: string) => (obj: Record<string, unknown>, msg?: string): void => {
      const e = { level, obj, msg }
      logs.push(e)
      for (const w of watchers.splice(0)) { if (w.pred(e)) w.resolve(e); else watchers.push(w) }
    }
    const logger: GatewayLogger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
    let fetches = 0
    const network = createNetworkPullThrough({
      fetch: async (digest, options) => { fetches++; return await me.transfer.fetch(digest, { findProviders: false, ...options }) },
      logger
    })
    const dir = await mkdtemp(join(tmpdir(), 'kiln-gw-stream-'))
    const db: KilnDb = openDb(join(dir, 'kiln.db'))
    const gateway: Gateway = createGateway({ store: me.store, refs: createRefStore(db), db, uploadDir: join(dir, 'uploads'), deleteEnabled: false, logger, pullThrough: chainPullThrough([network], logger) })
    const { url } = await gateway.listen('127.0.0.1', 0)
    cleanups.push(async () => { await gateway.close(); db.close(); await rm(dir, { recursive: true, force: true }) })
    const settled = async (pred: (e: LogEntry) => boolean): Promise<LogEntry> => {
      const seen = logs.find(pred)
      if (seen !== undefined) return seen
      return await new Promise(resolve => { watchers.push({ pred, resolve }) })
    }
    return { holder, me, url, logs, fetches: () => fetches, settled }
  }

  it('serves a 64 MiB blob while it is fetched, with the right bytes, and stores it', async () => {
    const blob = randomBlob(64 * MiB)
    const gate = makeGate()
    const { me, url, settled } = await setup(s => gatedStore(s, 32 * MiB, gate), blob)
    const client = follow(`${url}/v2/hpc/app/blobs/${blob.digest}`)
    const head = await client.head
    expect(head.status).toBe(200)
    expect(head.headers['content-length']).toBe(String(64 * MiB))
    expect(await client.firstBytes).toBeGreaterThan(0)
    // The holder has sent at most half of the blob: the fetch cannot have ended, and the store lacks it.
    expect(await me.store.has(blob.digest)).toBe(false)
    gate.open()
    const got = await client.ended
    expect(got).toEqual({ bytes: 64 * MiB, sha256: blob.digest, complete: true })
    expect(await me.store.has(blob.digest)).toBe(true)
    await settled(e => e.msg === 'pulled through' && e.obj.streamed === true)
  }, 120_000)

  it('cuts the transfer short when the only holder sends wrong bytes, stores nothing, and names the peer', async () => {
    const blob = randomBlob(8 * MiB)
    const { holder, me, url, settled } = await setup(s => corruptingStore(s), blob)
    const client = follow(`${url}/v2/hpc/app/blobs/${blob.digest}`)
    expect((await client.head).status).toBe(200)
    const got = await client.ended
    expect(got.complete).toBe(false)
    expect(got.bytes).toBeLessThan(8 * MiB)
    const liar = holder.node.peerId.toString()
    const mismatch = await settled(e => e.msg === 'peer sent bytes that do not match the digest')
    expect(mismatch.obj.peers).toEqual([liar])
    const failed = await settled(e => e.msg === 'pull-through source failed')
    expect(String(failed.obj.err)).toContain(liar)
    expect(await me.store.has(blob.digest)).toBe(false)
    // A later request fails before any byte: the fetch is tried again and fails again, the store still has nothing.
    const again = follow(`${url}/v2/hpc/app/blobs/${blob.digest}`)
    expect((await again.ended).complete).toBe(false)
    expect(await me.store.has(blob.digest)).toBe(false)
  }, 120_000)

  it('lets a second client join a fetch in progress: one fetch, the holder sends the blob once', async () => {
    const blob = randomBlob(32 * MiB)
    const gate = makeGate()
    const { holder, url, fetches } = await setup(s => gatedStore(s, 16 * MiB, gate), blob)
    const first = follow(`${url}/v2/hpc/app/blobs/${blob.digest}`)
    await first.firstBytes
    // Joins late: reads what has arrived so far from the partial, while the holder is held back.
    const second = follow(`${url}/v2/hpc/app/blobs/${blob.digest}`)
    expect(await second.firstBytes).toBeGreaterThan(0)
    gate.open()
    const [a, b] = await Promise.all([first.ended, second.ended])
    expect(a).toEqual({ bytes: 32 * MiB, sha256: blob.digest, complete: true })
    expect(b).toEqual(a)
    expect(fetches()).toBe(1)
    expect(holder.transfer.stats().bytesServed).toBe(32 * MiB)
  }, 120_000)
})
