import { afterEach, describe, expect, it } from 'vitest'
import { peerIdFromString } from '@libp2p/peer-id'
import { corruptingStore, randomBlob, startPeers, threeHoldersAndMe } from './helpers.ts'

const MiB = 1024 * 1024
const chunkSize = 256 * 1024

describe('multi-peer blob fetch over loopback', () => {
  let cleanup: (() => Promise<void>) | undefined
  afterEach(async () => { await cleanup?.(); cleanup = undefined })

  it('pulls a blob held by three peers from all three at once', async () => {
    const net = await threeHoldersAndMe(8 * MiB)
    cleanup = net.cleanup
    const { holders: [a, b, c], me, blob } = net
    const progress: number[] = []
    const res = await me.transfer.fetch(blob.digest, { chunkSize, findProviders: false, onProgress: p => progress.push(p.bytes) })
    expect(res.size).toBe(8 * MiB)
    expect(Buffer.from(await me.store.readBytes(blob.digest, 16 * MiB)).equals(Buffer.from(blob.bytes))).toBe(true)
    for (const p of [a, b, c]) expect(p.transfer.stats().bytesServed).toBeGreaterThan(0)
    expect([a, b, c].reduce((n, p) => n + p.transfer.stats().bytesServed, 0)).toBe(8 * MiB)
    expect(res.fromPeers.size).toBe(3)
    expect(progress.at(-1)).toBe(8 * MiB)
  })

  it('finds providers on the DHT when it has no hint', async () => {
    const net = await startPeers(3)
    cleanup = net.cleanup
    const [a, , me] = net.peers as [typeof net.peers[0], typeof net.peers[0], typeof net.peers[0]]
    const blob = randomBlob(MiB)
    await a.store.ingest(blob.bytes, { digest: blob.digest })
    await a.transfer.provide(blob.digest)
    const res = await me.transfer.fetch(blob.digest, { askConnected: false })
    expect(res.fromPeers.get(a.node.peerId.toString())).toBe(MiB)
  })

  it('gives up at once when the connected peers lack the blob and the DHT search ended while they were asked', async () => {
    // The peer answers not-found only after the provider search (a 2-node DHT, quick) is over: the
    // fetch used to wait for a provider that could no longer turn up, until its 20 s deadline.
    const net = await startPeers(2, (i, s) => i === 0 ? { ...s, info: async (d) => { await new Promise(resolve => setTimeout(resolve, 2000)); return await s.info(d) } } : s)
    cleanup = net.cleanup
    const me = net.peers[1]!
    const t0 = performance.now()
    await expect(me.transfer.fetch(randomBlob(1024).digest)).rejects.toMatchObject({ name: 'NoProvidersError' })
    expect(performance.now() - t0).toBeLessThan(4500)
  })

  it('completes from the others when a provider stops mid-transfer', async () => {
    const net = await threeHoldersAndMe(16 * MiB)
    cleanup = net.cleanup
    const { holders: [, b], me, blob } = net
    let stopped = false
    const res = await me.transfer.fetch(blob.digest, {
      chunkSize,
      findProviders: false,
      onProgress: (p) => {
        if (!stopped && p.bytes > 2 * MiB) { stopped = true; void b.node.stop() }
      }
    })
    expect(stopped).toBe(true)
    expect(res.size).toBe(16 * MiB)
    expect(await me.store.has(blob.digest)).toBe(true)
    expect(b.transfer.stats().bytesServed).toBeLessThan(16 * MiB)
  })

  it('detects a provider sending corrupted bytes, bans it and still completes', async () => {
    const net = await threeHoldersAndMe(4 * MiB, (i, s) => i === 1 ? corruptingStore(s) : s)
    cleanup = net.cleanup
    const { holders: [a, liar, c], me, blob } = net
    const res = await me.transfer.fetch(blob.digest, { chunkSize, findProviders: false })
    expect(res.banned).toEqual([liar.node.peerId.toString()])
    expect(Buffer.from(await me.store.readBytes(blob.digest, 8 * MiB)).equals(Buffer.from(blob.bytes))).toBe(true)
    // banned for the session: a second blob is not asked of the liar
    const blob2 = randomBlob(MiB)
    for (const p of [a, liar, c]) await p.store.ingest(blob2.bytes, { digest: blob2.digest })
    const before = liar.transfer.stats().requests
    const res2 = await me.transfer.fetch(blob2.digest, { chunkSize, findProviders: false })
    expect(res2.fromPeers.has(liar.node.peerId.toString())).toBe(false)
    expect(liar.transfer.stats().requests).toBe(before)
  })

  it('resumes an interrupted fetch without refetching what it has', async () => {
    const net = await startPeers(2)
    cleanup = net.cleanup
    const [a, me] = net.peers as [typeof net.peers[0], typeof net.peers[0]]
    const blob = randomBlob(8 * MiB)
    await a.store.ingest(blob.bytes, { digest: blob.digest })
    const ac = new AbortController()
    await expect(me.transfer.fetch(blob.digest, {
      chunkSize, findProviders: false, perPeerConcurrency: 1, signal: ac.signal,
      onProgress: (p) => { if (p.bytes >= 3 * MiB) ac.abort() }
    })).rejects.toThrow()
    const servedFirst = a.transfer.stats().bytesServed
    expect(await me.store.has(blob.digest)).toBe(false)
    const res = await me.transfer.fetch(blob.digest, { chunkSize, findProviders: false, providers: [peerIdFromString(a.node.peerId.toString())] })
    expect(res.resumedBytes).toBeGreaterThanOrEqual(3 * MiB)
    expect(res.resumedBytes + (res.fromPeers.get(a.node.peerId.toString()) ?? 0)).toBe(8 * MiB)
    expect(a.transfer.stats().bytesServed - servedFirst).toBe(8 * MiB - res.resumedBytes)
    expect(Buffer.from(await me.store.readBytes(blob.digest, 16 * MiB)).equals(Buffer.from(blob.bytes))).toBe(true)
  })
})
