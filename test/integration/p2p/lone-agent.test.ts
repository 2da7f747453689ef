/**
 * A lone agent (protocols/capability.md §4): an agent that starts before any
 * other DHT node keeps its record and provider keys on itself, so the first
 * node that connects finds it at once; it logs "published" only once a peer
 * has stored the record, which happens as soon as a DHT server arrives.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { createCapabilityAdvertiser, createKilnNode, findAgents, readCapabilityRecord } from '../../../src/p2p/index.ts'
import type { CapabilityAdvertiser, KilnNode } from '../../../src/p2p/index.ts'

/** How long the agent is left alone before anyone connects: a publication that needs no peer would have ended by then. */
const ALONE_MS = 1500

const description = {
  platforms: [{ platform: 'linux/riscv64', features: [] }],
  emulated: [],
  capabilities: ['gpu'],
  details: {},
  limits: { cpus: 2, memoryBytes: 1 << 30, diskBytes: 1 << 30 },
  queue: { queued: 0, running: 0 }
}

describe('a lone agent', () => {
  const nodes: KilnNode[] = []
  let advertiser: CapabilityAdvertiser | undefined
  afterEach(async () => {
    await advertiser?.stop()
    await Promise.allSettled(nodes.splice(0).map(async n => { await n.stop() }))
  })
  const node = async (init: { key?: Awaited<ReturnType<typeof generateKeyPair>>, clientMode?: boolean } = {}): Promise<KilnNode> => {
    const n = await createKilnNode({ ...(init.key !== undefined ? { privateKey: init.key } : {}), listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, dht: { clientMode: init.clientMode ?? false } })
    nodes.push(n)
    return n
  }

  it('is found at once by the first node that connects, and says published only once a peer stored its record', { timeout: 60_000 }, async () => {
    const key = await generateKeyPair('Ed25519')
    const agentId = peerIdFromPrivateKey(key).toString()
    const agent = await node({ key })
    const lines: Array<{ msg: string, storedOn?: number }> = []
    const log = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as { msg: string }) } })
    advertiser = createCapabilityAdvertiser({ node: agent, privateKey: key, describe: () => description, log })
    const first = advertiser.start()
    await expect.poll(() => advertiser?.current(), { timeout: 10_000, interval: 20 }).toBeDefined()
    await new Promise(resolve => setTimeout(resolve, ALONE_MS))
    const saidPublished = (): Array<{ storedOn?: number }> => lines.filter(l => l.msg === 'capability record published')
    expect(advertiser.published()).toBeUndefined()
    expect(saidPublished()).toEqual([])

    // A DHT client (it stores nothing, so the agent stays alone in its DHT) finds it by platform and by
    // capability at once: the agent answers for its own keys and record.
    const client = await node({ clientMode: true })
    await client.dial(agent.getMultiaddrs()[0]!)
    const started = Date.now()
    const byPlatform = await findAgents(client, { platform: 'linux/riscv64', timeoutMs: 15_000 })
    const byCapability = await findAgents(client, { capability: 'gpu', timeoutMs: 15_000 })
    const searchMs = Date.now() - started
    expect(byPlatform.map(r => r.peerId)).toEqual([agentId])
    expect(byCapability.map(r => r.peerId)).toEqual([agentId])
    expect(searchMs).toBeLessThan(10_000)
    const fromDht = await readCapabilityRecord(client, agentId, { from: 'dht', signal: AbortSignal.timeout(15_000) })
    expect(fromDht?.seq).toBe(advertiser.current()?.seq)
    expect(advertiser.published()).toBeUndefined()
    expect(saidPublished()).toEqual([])

    // The first DHT server arrives: the waiting publication goes on and stores the record there.
    const peer = await node()
    await peer.dial(agent.getMultiaddrs()[0]!)
    await first
    const published = advertiser.published()
    expect(published).toBeDefined()
    expect(saidPublished()[0]?.storedOn).toBe(1)

    // The first peer really stored it: with the agent gone, its own DHT copy answers.
    await advertiser.stop()
    advertiser = undefined
    await agent.stop()
    const copy = await readCapabilityRecord(peer, agentId, { from: 'dht', signal: AbortSignal.timeout(15_000) })
    expect(copy?.peerId).toBe(agentId)
    expect(copy?.seq).toBeGreaterThanOrEqual(published?.seq ?? Infinity)
  })
})
