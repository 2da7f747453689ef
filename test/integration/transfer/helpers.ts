import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { createFsContentStore, sha256Digest } from '../../../src/content/index.ts'
import type { ContentStore, Digest } from '../../../src/content/index.ts'
import { createKilnNode } from '../../../src/p2p/index.ts'
import type { KilnNode } from '../../../src/p2p/index.ts'
import { createTransfer } from '../../../src/transfer/index.ts'
import type { Transfer } from '../../../src/transfer/index.ts'

export interface Peer { node: KilnNode, store: ContentStore, transfer: Transfer }

/** Starts peers on loopback, each with its own fs store, all dialled to the first. */
export async function startPeers (n: number, wrapStore?: (i: number, s: ContentStore) => ContentStore): Promise<{ peers: Peer[], cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-transfer-'))
  const peers: Peer[] = []
  for (let i = 0; i < n; i++) {
    const raw = await createFsContentStore({ root: join(dir, String(i)) })
    const store = wrapStore?.(i, raw) ?? raw
    const node = await createKilnNode({ listen: ['/ip4/127.0.0.1/tcp/0'] })
    const transfer = createTransfer({ node, store })
    await transfer.start()
    peers.push({ node, store: raw, transfer })
  }
  for (let i = 1; i < n; i++) {
    for (let j = 0; j < i; j++) await peers[i]!.node.dial(peers[j]!.node.getMultiaddrs()[0]!)
  }
  return {
    peers,
    cleanup: async () => {
      await Promise.all(peers.map(async p => { await p.transfer.stop().catch(() => {}); await p.node.stop() }))
      await rm(dir, { recursive: true, force: true })
    }
  }
}

export function randomBlob (size: number): { bytes: Uint8Array, digest: Digest } {
  const bytes = randomBytes(size)
  return { bytes, digest: sha256Digest(bytes) }
}

/** A store whose reads of one blob flip a byte in every range served. */
export function corruptingStore (inner: ContentStore): ContentStore {
  return {
    ...inner,
    read: (digest, options) => (async function * () {
      let first = true
      for await (const chunk of inner.read(digest, options)) {
        if (first) { const c = Uint8Array.from(chunk); c[0] = (c[0] ?? 0) ^ 0xff; first = false; yield c } else yield chunk
      }
    })()
  }
}

/**
 * Four peers (see startPeers): the first three hold a random blob of `size`
 * bytes, the fourth (`me`) has nothing and fetches.
 */
export async function threeHoldersAndMe (size: number, wrapStore?: (i: number, s: ContentStore) => ContentStore): Promise<{ holders: [Peer, Peer, Peer], me: Peer, blob: { bytes: Uint8Array, digest: Digest }, cleanup: () => Promise<void> }> {
  const net = await startPeers(4, wrapStore)
  const [a, b, c, me] = net.peers as [Peer, Peer, Peer, Peer]
  const blob = randomBlob(size)
  for (const p of [a, b, c]) await p.store.ingest(blob.bytes, { digest: blob.digest })
  return { holders: [a, b, c], me, blob, cleanup: net.cleanup }
}
