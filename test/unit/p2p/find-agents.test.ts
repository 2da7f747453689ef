import { beforeAll, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId, PeerInfo, PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { CapabilityRecord } from '../../../protocols/capability.ts'
import { findAgents, signCapabilityRecord } from '../../../src/p2p/index.ts'
import type { KilnNode } from '../../../src/p2p/index.ts'
import { encodeFrame } from '../../../src/p2p/stream-io.ts'
import { FakeStream } from './fake-stream.ts'

// findAgents against a fake node: a scripted provider walk (kad-dht's event
// stream) and agents that answer the direct record read from memory, so each
// test can count the walk's steps and the dials.

interface Agent { key: PrivateKey, id: PeerId, info: PeerInfo, capabilities: string[] }

async function makeAgent (capabilities: string[] = ['gpu']): Promise<Agent> {
  const key = await generateKeyPair('Ed25519')
  const id = peerIdFromPrivateKey(key)
  return { key, id, info: { id, multiaddrs: [] }, capabilities }
}

async function signedRecord (agent: Agent, over: Partial<CapabilityRecord> = {}, signer: PrivateKey = agent.key): Promise<Uint8Array> {
  const now = Date.now()
  const record: CapabilityRecord = {
    v: 1,
    peerId: agent.id.toString(),
    seq: now,
    issuedAt: now,
    expiresAt: now + 60_000,
    platforms: [{ platform: 'linux/amd64', features: [] }],
    emulated: [],
    capabilities: agent.capabilities,
    details: {},
    limits: { cpus: 1, memoryBytes: 1, diskBytes: 1 },
    queue: { queued: 0, running: 0 },
    addresses: [],
    ...over
  }
  if (signer === agent.key) return await signCapabilityRecord(record, signer)
  // A forgery: the agent's record, signed by someone else's key.
  const forger = peerIdFromPrivateKey(signer).toString()
  const bytes = await signCapabilityRecord({ ...record, peerId: forger }, signer)
  return new TextEncoder().encode(new TextDecoder().decode(bytes).replace(forger, agent.id.toString()))
}

/** One step of the scripted walk: a peer answers, naming these providers (none: a peer far from the key). */
type Step = PeerInfo[]

interface FakeNetwork {
  node: KilnNode
  /** Steps of the walk consumed so far. */
  steps: () => number
  /** Whether the walk was stopped before its end (its signal aborted or the consumer broke off). */
  cutShort: () => boolean
  dials: string[]
}

/**
 * A node whose provider walk yields `walk` one step every `stepMs`, whose
 * direct reads are answered by `serve` (undefined: the peer never answers,
 * until the read is aborted), and whose DHT holds no records.
 */
function fakeNetwork (walk: Step[], serve: Map<string, Uint8Array | undefined>, opts: { stepMs?: number, connected?: Set<string> } = {}): FakeNetwork {
  let steps = 0
  let cutShort = false
  const dials: string[] = []
  const from = { toString: () => 'holder' } as unknown as PeerId
  const stepMs = opts.stepMs ?? 5
  async function * findProviders (_key: unknown, { signal }: { signal: AbortSignal }): AsyncGenerator<unknown> {
    const seen = new Set<string>()
    let finished = false
    try {
      for (const providers of walk) {
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(resolve, stepMs)
          signal.addEventListener('abort', () => { clearTimeout(t); reject(signal.reason as Error) }, { once: true })
        })
        steps++
        yield { name: 'PEER_RESPONSE', from, providers, closer: [] }
        const fresh = providers.filter(p => !seen.has(p.id.toString()))
        for (const p of fresh) seen.add(p.id.toString())
        if (fresh.length > 0) yield { name: 'PROVIDER', from, providers: fresh }
      }
      finished = true
    } finally {
      if (!finished) cutShort = true
    }
  }
  const node = {
    peerId: self.id,
    services: {
      dht: {
        findProviders,
        // No DHT copies: the fallback read finds nothing.
        async * get () { const err = new Error('not found'); err.name = 'NotFoundError'; throw err }
      }
    },
    peerStore: { merge: async () => {} },
    getConnections: (peer: PeerId) => opts.connected?.has(peer.toString()) === true ? [{}] : [],
    async dialProtocol (peer: PeerId, _protocol: string, { signal }: { signal: AbortSignal }) {
      dials.push(peer.toString())
      const bytes = serve.get(peer.toString())
      if (bytes === undefined) {
        await new Promise((_resolve, reject) => { signal.addEventListener('abort', () => { reject(signal.reason as Error) }, { once: true }) })
      }
      const stream = new FakeStream()
      stream.push(encodeFrame(bytes!))
      stream.endRemote()
      return stream.asStream()
    }
  }
  return { node: node as unknown as KilnNode, steps: () => steps, cutShort: () => cutShort, dials }
}

let self: Agent
beforeAll(async () => { self = await makeAgent() })

const ids = (records: CapabilityRecord[]): string[] => records.map(r => r.peerId).sort()
const idsOf = (agents: Agent[]): string[] => agents.map(a => a.id.toString()).sort()

describe('findAgents', () => {
  it('ends the provider walk once three holders in a row name nobody new, with every provider found', async () => {
    const agents = await Promise.all([makeAgent(), makeAgent(), makeAgent()])
    const [a, b, c] = agents.map(x => x.info) as [PeerInfo, PeerInfo, PeerInfo]
    const serve = new Map(await Promise.all(agents.map(async x => [x.id.toString(), await signedRecord(x)] as const)))
    // A holder that names someone new resets the count: the walk may end after step 9, not before.
    const walk: Step[] = [[], [a], [a], [a, b], [a, b], [a], [a, b, c], [a, c], [b], [a, b, c], ...Array.from({ length: 200 }, () => [a, b, c])]
    const net = fakeNetwork(walk, serve, { stepMs: 2 })
    const found = await findAgents(net.node, { capability: 'gpu' })
    expect(ids(found)).toEqual(idsOf(agents))
    expect(net.steps()).toBe(10)
    expect(net.cutShort()).toBe(true)
  })

  it('walks to the end with settleResponses 0', async () => {
    const agent = await makeAgent()
    const serve = new Map([[agent.id.toString(), await signedRecord(agent)]])
    const walk: Step[] = Array.from({ length: 30 }, () => [agent.info])
    const net = fakeNetwork(walk, serve, { stepMs: 1 })
    expect(ids(await findAgents(net.node, { capability: 'gpu', settleResponses: 0 }))).toEqual([agent.id.toString()])
    expect(net.steps()).toBe(30)
    expect(net.cutShort()).toBe(false)
  })

  it('with a limit, returns once that many matching records are verified, without reading the rest', async () => {
    const agents = await Promise.all(Array.from({ length: 6 }, async () => await makeAgent()))
    const serve = new Map(await Promise.all(agents.map(async x => [x.id.toString(), await signedRecord(x)] as const)))
    const walk: Step[] = [agents.map(x => x.info), ...Array.from({ length: 1000 }, () => [] as PeerInfo[])]
    const net = fakeNetwork(walk, serve, { stepMs: 5 })
    const started = Date.now()
    const found = await findAgents(net.node, { capability: 'gpu', limit: 2, concurrency: 1 })
    expect(found).toHaveLength(2)
    expect(net.dials).toHaveLength(2)
    expect(net.cutShort()).toBe(true)
    // The walk alone would take 5 s.
    expect(Date.now() - started).toBeLessThan(2000)
  })

  it('reads connected candidates before those that need a dial', async () => {
    const agents = await Promise.all(Array.from({ length: 4 }, async () => await makeAgent()))
    const serve = new Map(await Promise.all(agents.map(async x => [x.id.toString(), await signedRecord(x)] as const)))
    const connected = new Set([agents[2]!.id.toString(), agents[3]!.id.toString()])
    const net = fakeNetwork([agents.map(x => x.info)], serve, { connected })
    const found = await findAgents(net.node, { capability: 'gpu', concurrency: 1, limit: 2 })
    expect(ids(found)).toEqual([...connected].sort())
    expect(net.dials.sort()).toEqual([...connected].sort())
  })

  it('does not wait on a candidate that never answers beyond peerTimeoutMs', async () => {
    const [live, silent] = await Promise.all([makeAgent(), makeAgent()])
    const serve = new Map<string, Uint8Array | undefined>([[live!.id.toString(), await signedRecord(live!)], [silent!.id.toString(), undefined]])
    const net = fakeNetwork([[silent!.info, live!.info]], serve)
    const started = Date.now()
    const found = await findAgents(net.node, { capability: 'gpu', peerTimeoutMs: 200, timeoutMs: 10_000 })
    expect(ids(found)).toEqual([live!.id.toString()])
    expect(Date.now() - started).toBeLessThan(3000)
  })

  it('refuses forged, expired and non-matching records', async () => {
    const [good, forged, expired, cpuOnly] = await Promise.all([makeAgent(), makeAgent(), makeAgent(), makeAgent([])])
    const attacker = await generateKeyPair('Ed25519')
    const now = Date.now()
    const serve = new Map<string, Uint8Array | undefined>([
      [good!.id.toString(), await signedRecord(good!)],
      [forged!.id.toString(), await signedRecord(forged!, {}, attacker)],
      [expired!.id.toString(), await signedRecord(expired!, { issuedAt: now - 120_000, expiresAt: now - 60_000 })],
      [cpuOnly!.id.toString(), await signedRecord(cpuOnly!)]
    ])
    const net = fakeNetwork([[good!.info, forged!.info, expired!.info, cpuOnly!.info]], serve)
    expect(ids(await findAgents(net.node, { capability: 'gpu' }))).toEqual([good!.id.toString()])
    expect(net.dials).toHaveLength(4)
  })
})
