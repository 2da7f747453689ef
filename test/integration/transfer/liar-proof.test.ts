import { afterEach, describe, expect, it } from 'vitest'
import type { ContentStore } from '../../../src/content/index.ts'
import { corruptingStore, randomBlob, startPeers, threeHoldersAndMe } from './helpers.ts'

const MiB = 1024 * 1024
const chunkSize = 256 * 1024

/** A store that counts writeAt and readAt calls on the partials it opens. */
function countingStore (inner: ContentStore, counts: { writes: number, readBacks: number }): ContentStore {
  return {
    ...inner,
    openPartial: async (digest, size) => {
      const p = await inner.openPartial(digest, size)
      return {
        ...p,
        digest: p.digest,
        size: p.size,
        writeAt: async (offset, data) => { counts.writes++; await p.writeAt(offset, data) },
        readAt: async (offset, length) => { counts.readBacks++; return await p.readAt(offset, length) }
      }
    }
  }
}

// Chunks are hashed only after a failed commit (read back from the partial):
// these pin that a liar is still proven and banned that way, and that an
// honest fetch reads nothing back.
describe('blob fetch: liars found by reading back a failed partial', () => {
  let cleanup: (() => Promise<void>) | undefined
  afterEach(async () => { await cleanup?.(); cleanup = undefined })

  it('with no third peer to vote, bans the liar once the blob is proven, and stores the right bytes', async () => {
    const net = await startPeers(3, (i, s) => i === 1 ? corruptingStore(s) : s)
    cleanup = net.cleanup
    const [honest, liar, me] = net.peers as [typeof net.peers[0], typeof net.peers[0], typeof net.peers[0]]
    const blob = randomBlob(4 * MiB)
    for (const p of [honest, liar]) await p.store.ingest(blob.bytes, { digest: blob.digest })
    const res = await me.transfer.fetch(blob.digest, { chunkSize, findProviders: false })
    expect(res.banned).toEqual([liar.node.peerId.toString()])
    expect(res.rounds).toBeGreaterThanOrEqual(3)
    expect(Buffer.from(await me.store.readBytes(blob.digest, 8 * MiB)).equals(Buffer.from(blob.bytes))).toBe(true)
  })

  it('reads nothing back and bans nobody when the first commit verifies', async () => {
    const counts = { writes: 0, readBacks: 0 }
    const net = await startPeers(3, (i, s) => i === 2 ? countingStore(s, counts) : s)
    cleanup = net.cleanup
    const [a, b, me] = net.peers as [typeof net.peers[0], typeof net.peers[0], typeof net.peers[0]]
    const blob = randomBlob(4 * MiB)
    for (const p of [a, b]) await p.store.ingest(blob.bytes, { digest: blob.digest })
    const res = await me.transfer.fetch(blob.digest, { chunkSize, findProviders: false })
    expect(res.banned).toEqual([])
    expect(res.rounds).toBe(1)
    expect(counts.writes).toBe(16)
    expect(counts.readBacks).toBe(0)
  })

  it('reads back every chunk of a failed round before discarding it', async () => {
    const counts = { writes: 0, readBacks: 0 }
    const net = await threeHoldersAndMe(4 * MiB, (i, s) => i === 1 ? corruptingStore(s) : i === 3 ? countingStore(s, counts) : s)
    cleanup = net.cleanup
    const { holders: [, liar], me, blob } = net
    const res = await me.transfer.fetch(blob.digest, { chunkSize, findProviders: false })
    expect(res.banned).toEqual([liar.node.peerId.toString()])
    expect(counts.readBacks).toBe(16)
    expect(await me.store.has(blob.digest)).toBe(true)
  })
})
