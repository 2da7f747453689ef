/**
 * Direct channels (src/p2p/direct.ts, protocols/transport.md §5): blob
 * ranges go over them when the serving peer takes them and over a libp2p
 * stream when it does not; a peer's limits, a wrong peer id, a channel that
 * ends early and a node that stops are all handled without a hang or a
 * stray byte.
 */
import { createHash } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { BLOB_PROTOCOL } from '../../../protocols/constants.ts'
import { createKilnNode, dialDirect } from '../../../src/p2p/index.ts'
import type { DirectChannel, KilnNode } from '../../../src/p2p/index.ts'
import { readBlobRanges } from '../../../src/transfer/index.ts'
import { randomBlob, startPeers } from '../transfer/helpers.ts'

const HOLD = '/kiln/test/hold/1.0.0'
const SHORT = '/kiln/test/short/1.0.0'
const MiB = 1024 * 1024
const cleanups: Array<() => Promise<void>> = []

afterEach(async () => {
  await Promise.all(cleanups.splice(0).map(async c => { await c() }))
})

async function twoNodes (): Promise<[KilnNode, KilnNode]> {
  const a = await createKilnNode({ listen: ['/ip4/127.0.0.1/tcp/0'] })
  const b = await createKilnNode({ listen: ['/ip4/127.0.0.1/tcp/0'] })
  cleanups.push(async () => { await Promise.all([a.stop(), b.stop()]) })
  await b.dial(a.getMultiaddrs().find(m => m.toString().includes('/tls'))!)
  return [a, b]
}

/** Reads `size` bytes of digest from peer in ranges of `chunkSize`, and returns their sha256. */
async function readAll (node: KilnNode, from: KilnNode, digest: ReturnType<typeof randomBlob>['digest'], size: number, direct: boolean): Promise<string> {
  const out = new Uint8Array(size)
  await readBlobRanges(node, from.peerId, digest, { offset: 0, length: size }, (offset, bytes) => { out.set(bytes, offset) },
    { chunkSize: 3 * MiB + 17, streams: 2, direct, signal: AbortSignal.timeout(30_000) })
  return createHash('sha256').update(out).digest('hex')
}

/** Registers a handler that keeps each channel until the client ends it, and counts the ends it saw. */
function holdChannels (node: KilnNode, limits: { maxInbound: number, maxInboundPerPeer: number }): { ended: number } {
  const seen = { ended: 0 }
  node.services.direct.handle(HOLD, async (channel) => {
    const frame = await channel.readFrame(64, { idleTimeoutMs: 20_000 }).catch(() => undefined)
    if (frame === undefined) seen.ended++
    await channel.close(AbortSignal.timeout(1000)).catch(() => {})
  }, { ...limits, maxBuffered: 1024 })
  return seen
}

describe('direct channels', () => {
  it('carry blob ranges into the reader\'s buffers when the peer takes them, and streams still work beside them', async () => {
    const net = await startPeers(2)
    cleanups.push(net.cleanup)
    const [holder, me] = net.peers as [typeof net.peers[0], typeof net.peers[0]]
    const blob = randomBlob(10 * MiB + 5)
    await holder.store.ingest(blob.bytes, { digest: blob.digest })
    const want = createHash('sha256').update(blob.bytes).digest('hex')

    expect(await readAll(me.node, holder.node, blob.digest, blob.bytes.byteLength, true)).toBe(want)
    expect(holder.node.services.direct.stats().accepted).toBe(2)
    expect(me.node.services.direct.stats()).toMatchObject({ dialed: 2, fellBack: 0 })

    expect(await readAll(me.node, holder.node, blob.digest, blob.bytes.byteLength, false)).toBe(want)
    expect(holder.node.services.direct.stats().accepted).toBe(2)
  })

  it('fall back to a libp2p stream when the peer takes none, and that peer is not dialed directly again', async () => {
    const net = await startPeers(2)
    cleanups.push(net.cleanup)
    const [holder, me] = net.peers as [typeof net.peers[0], typeof net.peers[0]]
    const blob = randomBlob(2 * MiB)
    await holder.store.ingest(blob.bytes, { digest: blob.digest })
    holder.node.services.direct.unhandle(BLOB_PROTOCOL)
    const want = createHash('sha256').update(blob.bytes).digest('hex')

    expect(await readAll(me.node, holder.node, blob.digest, blob.bytes.byteLength, true)).toBe(want)
    expect(await readAll(me.node, holder.node, blob.digest, blob.bytes.byteLength, true)).toBe(want)
    expect(holder.node.services.direct.stats().accepted).toBe(0)
    // Both sessions of the first read tried; after that the peer is remembered as taking none.
    expect(me.node.services.direct.stats().dialed).toBe(0)
    expect(me.node.services.direct.stats().fellBack).toBeLessThanOrEqual(2)
    expect(me.node.services.direct.stats().fellBack).toBeGreaterThanOrEqual(1)
  })

  it('close what is over the per-peer limit at once, and the client sees the channel end', async () => {
    const [a, b] = await twoNodes()
    const seen = holdChannels(a, { maxInbound: 10, maxInboundPerPeer: 2 })
    const open: DirectChannel[] = []
    for (let i = 0; i < 3; i++) {
      const ch = await dialDirect(b, a.peerId, HOLD, 1024, AbortSignal.timeout(5000))
      expect(ch).toBeDefined()
      open.push(ch!)
    }
    // The third was refused after its handshake: it ends (or fails) instead of hanging.
    const third = await open[2]!.readFrame(64, { idleTimeoutMs: 5000 }).then(f => f === undefined ? 'ended' : 'frame', () => 'failed')
    expect(['ended', 'failed']).toContain(third)
    await expect.poll(() => a.services.direct.stats()).toMatchObject({ accepted: 2, refused: 1 })
    await Promise.all(open.slice(0, 2).map(async ch => { await ch.close(AbortSignal.timeout(2000)) }))
    await expect.poll(() => seen.ended).toBe(2)
  })

  it('refuse a dial whose peer id is not the one at the address', async () => {
    const [a, b] = await twoNodes()
    const c = await createKilnNode({ listen: ['/ip4/127.0.0.1/tcp/0'] })
    cleanups.push(async () => { await c.stop() })
    holdChannels(a, { maxInbound: 10, maxInboundPerPeer: 10 })
    const aTls = a.getMultiaddrs().filter(m => m.toString().includes('/tls'))
    const ch = await b.services.direct.dial(c.peerId, aTls, HOLD, 1024, AbortSignal.timeout(5000))
    expect(ch).toBeUndefined()
    expect(b.services.direct.stats()).toMatchObject({ dialed: 0, fellBack: 1 })
    expect(a.services.direct.stats().accepted).toBe(0)
  })

  it('fail a read that the channel ends short, and the channel is closed', async () => {
    const [a, b] = await twoNodes()
    a.services.direct.handle(SHORT, async (channel) => {
      await channel.send(new Uint8Array(100 * 1024).fill(7))
      await channel.close(AbortSignal.timeout(1000))
    }, { maxInbound: 4, maxInboundPerPeer: 4, maxBuffered: 1024 })
    const ch = await dialDirect(b, a.peerId, SHORT, 2 * MiB, AbortSignal.timeout(5000))
    const target = new Uint8Array(MiB)
    await expect(ch!.readInto(target, { idleTimeoutMs: 5000 })).rejects.toThrow(/ended|closed/)
    expect(target.subarray(0, 100 * 1024).every(x => x === 7)).toBe(true)
    expect(target.subarray(100 * 1024).every(x => x === 0)).toBe(true)
    expect(ch!.open).toBe(false)
  })

  it('are closed on both ends when a node stops', async () => {
    const [a, b] = await twoNodes()
    const seen = holdChannels(a, { maxInbound: 10, maxInboundPerPeer: 10 })
    const ch = await dialDirect(b, a.peerId, HOLD, 1024, AbortSignal.timeout(5000))
    expect(ch!.open).toBe(true)
    // The client's handshake ends before the server has checked its certificate.
    await expect.poll(() => a.services.direct.stats().accepted).toBe(1)
    await b.stop()
    expect(ch!.open).toBe(false)
    await expect.poll(() => seen.ended).toBe(1)
  })

  it('are not made by a node with a pnet key (no TLS transport)', async () => {
    const psk = new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${'ab'.repeat(32)}`)
    const a = await createKilnNode({ listen: ['/ip4/127.0.0.1/tcp/0'], psk })
    const b = await createKilnNode({ listen: ['/ip4/127.0.0.1/tcp/0'], psk })
    cleanups.push(async () => { await Promise.all([a.stop(), b.stop()]) })
    await b.dial(a.getMultiaddrs()[0]!)
    expect(b.services.direct.enabled).toBe(false)
    expect(await dialDirect(b, a.peerId, HOLD, 1024, AbortSignal.timeout(5000))).toBeUndefined()
  })
})
