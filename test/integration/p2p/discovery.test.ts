import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import type { KadDHT } from '@libp2p/kad-dht'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import { createLibp2p } from 'libp2p'
import { pino } from 'pino'
import { capabilityDhtKey, encodeSignedCapability } from '../../../protocols/capability.ts'
import type { CapabilityRecord } from '../../../protocols/capability.ts'
import { CAPABILITY_NAMESPACE, KAD_PROTOCOL } from '../../../protocols/constants.ts'
import { createCapabilityAdvertiser, createKilnNode, findAgents, isTcpTlsAddress, readCapabilityRecord, signCapabilityRecord } from '../../../src/p2p/index.ts'
import type { CapabilityAdvertiser, CapabilityDescription, KilnNode, KilnNodeInit } from '../../../src/p2p/index.ts'
import { mapLimit } from '../../../src/util/map-limit.ts'

// The whole file runs on a 2-core machine shared with other test files, so
// the network is formed in stages, a few dials and queries at a time, every
// wait is on an event or a result with a generous bound, and no step has a
// fixed sleep except the one the test is about (a record lapsing).
const N = 20
const TTL = 15_000
const QUERY_TIMEOUT = 20_000
/** A provider search under this load can wait seconds between answers; end it only after 5 s without one. */
const QUIET = 5000
/** Nodes querying at once. */
const QUERY_CONCURRENCY = 4
const NODE_INIT: KilnNodeInit = {
  listen: ['/ip4/127.0.0.1/tcp/0'],
  // alpha 3: a query asks three peers at a time rather than ten, so 20 nodes in one process do not dial each other all at once.
  dht: { kBucketSize: 8, alpha: 3 },
  // A loaded machine can take seconds for a Noise handshake; a dial storm is also bounded per node.
  connections: { maxParallelDials: 8, dialTimeout: 30_000, addressDialTimeout: 30_000, inboundUpgradeTimeout: 30_000 }
}

// KILN_DEBUG_DISCOVERY=1 prints why a search missed a candidate.
const log = process.env.KILN_DEBUG_DISCOVERY !== undefined ? pino({ level: 'debug' }, pino.destination(2)) : undefined

interface Member { node: KilnNode, privateKey: PrivateKey, advertiser?: CapabilityAdvertiser }
interface AgentSpec { platform: string, capabilities: string[], emulated: string[] }

// agent index -> what it builds
const AGENTS: Record<number, AgentSpec> = {
  2: { platform: 'linux/amd64', capabilities: ['gpu', 'cuda'], emulated: [] },
  5: { platform: 'linux/arm64', capabilities: ['mpi'], emulated: [] },
  9: { platform: 'linux/amd64', capabilities: [], emulated: ['linux/arm64'] },
  13: { platform: 'linux/ppc64le', capabilities: ['gpu'], emulated: ['linux/riscv64'] },
  17: { platform: 'linux/arm64', capabilities: ['gpu', 'mpi'], emulated: [] }
}

function describeAgent (spec: AgentSpec): CapabilityDescription {
  return {
    platforms: [{ platform: spec.platform, features: spec.platform === 'linux/amd64' ? ['avx2', 'avx512f'] : ['sve'] }],
    emulated: spec.emulated,
    capabilities: spec.capabilities,
    details: {},
    limits: { cpus: 4, memoryBytes: 8 << 30, diskBytes: 100 << 30 },
    queue: { queued: 0, running: 0 }
  }
}

/** Resolves once the node has identified `n` peers speaking the kiln DHT protocol; rejects after ms. */
async function kadPeers (node: KilnNode, n: number, ms: number): Promise<void> {
  const count = async (): Promise<number> => {
    let k = 0
    for (const peer of node.getPeers()) {
      const p = await node.peerStore.get(peer).catch(() => undefined)
      if (p?.protocols.includes(KAD_PROTOCOL) === true) k++
    }
    return k
  }
  if (await count() >= n) return
  await new Promise<void>((resolve, reject) => {
    const onIdentify = (): void => { void count().then(k => { if (k >= n) { done(); resolve() } }) }
    const timer = setTimeout(() => { done(); reject(new Error(`${node.peerId.toString()} identified fewer than ${n} DHT peers in ${ms} ms`)) }, ms)
    const done = (): void => { clearTimeout(timer); node.removeEventListener('peer:identify', onIdentify) }
    node.addEventListener('peer:identify', onIdentify)
  })
}

describe(`capability discovery on a ${N}-node DHT`, () => {
  const members: Member[] = []
  let attacker: Libp2p<{ dht: KadDHT }> | undefined

  beforeAll(async () => {
    for (let i = 0; i < N; i++) {
      const privateKey = await generateKeyPair('Ed25519')
      members.push({ privateKey, node: await createKilnNode({ ...NODE_INIT, privateKey }) })
    }
    // Staged formation: each node joins through the first and its predecessor, one join at a time,
    // and the next joins only once this one has identified both; the DHT finds the rest.
    for (let i = 1; i < N; i++) {
      const m = members[i]!
      await m.node.dial(members[0]!.node.getMultiaddrs()[0]!)
      if (i > 1) await m.node.dial(members[i - 1]!.node.getMultiaddrs()[0]!)
      await kadPeers(m.node, Math.min(i, 2), 30_000)
    }
    // Agents publish two at a time; a publication that reached no peer is retried, and the test
    // starts only once every agent's record and keys are stored in the DHT.
    await mapLimit(Object.entries(AGENTS), 2, async ([i, spec]) => {
      const m = members[Number(i)]!
      m.advertiser = createCapabilityAdvertiser({ node: m.node, privateKey: m.privateKey, describe: () => describeAgent(spec), ttlMs: TTL, refreshMs: TTL / 3, publishTimeoutMs: 20_000 })
      await m.advertiser.start()
      for (let attempt = 0; m.advertiser.published() === undefined; attempt++) {
        if (attempt === 3) throw new Error(`agent ${i} could not publish its record`)
        await m.advertiser.publish().catch(() => {})
      }
    })
  }, 180_000)

  afterAll(async () => {
    await Promise.allSettled(members.map(async m => { await m.advertiser?.stop(); await m.node.stop() }))
    await attacker?.stop()
  }, 60_000)

  const ids = (records: CapabilityRecord[]): string[] => records.map(r => r.peerId).sort()
  const expected = (pred: (spec: AgentSpec) => boolean): string[] =>
    Object.entries(AGENTS).filter(([, spec]) => pred(spec)).map(([i]) => members[Number(i)]!.node.peerId.toString()).sort()
  const builds = (spec: AgentSpec, platform: string): boolean => spec.platform === platform || spec.emulated.includes(platform)

  it('every node finds agents by platform and by capability', async () => {
    const wantArm = expected(s => builds(s, 'linux/arm64'))
    const wantGpu = expected(s => s.capabilities.includes('gpu'))
    const wantGpuArm = expected(s => builds(s, 'linux/arm64') && s.capabilities.includes('gpu'))
    expect(wantGpuArm).toHaveLength(1)
    const results = await mapLimit(members, QUERY_CONCURRENCY, async m => ({
      arm: ids(await findAgents(m.node, { platform: 'linux/arm64', timeoutMs: QUERY_TIMEOUT, quietMs: QUIET, log })),
      gpu: ids(await findAgents(m.node, { capability: 'gpu', timeoutMs: QUERY_TIMEOUT, quietMs: QUIET, log })),
      gpuArm: ids(await findAgents(m.node, { platform: 'linux/arm64', capability: 'gpu', timeoutMs: QUERY_TIMEOUT, quietMs: QUIET, log }))
    }))
    results.forEach((r, i) => {
      expect(r.arm, `node ${i}, platform`).toEqual(wantArm)
      expect(r.gpu, `node ${i}, capability`).toEqual(wantGpu)
      expect(r.gpuArm, `node ${i}, platform and capability`).toEqual(wantGpuArm)
    })
  }, 240_000)

  it('finds agents by an emulated platform, marked as emulated, and leaves them out of native-only searches', async () => {
    const riscv = members[13]!.node.peerId.toString()
    const emulatorOfArm = members[9]!.node.peerId.toString()
    await mapLimit([members[0]!, members[7]!, members[11]!, members[19]!], 2, async m => {
      const found = await findAgents(m.node, { platform: 'linux/riscv64', timeoutMs: QUERY_TIMEOUT, quietMs: QUIET, log })
      expect(ids(found)).toEqual([riscv])
      expect(found[0]!.emulated).toContain('linux/riscv64')
      expect(found[0]!.platforms.map(p => p.platform)).not.toContain('linux/riscv64')
      expect(await findAgents(m.node, { platform: 'linux/riscv64', nativeOnly: true, timeoutMs: QUERY_TIMEOUT, quietMs: QUIET, log })).toEqual([])
      const native = ids(await findAgents(m.node, { platform: 'linux/arm64', nativeOnly: true, timeoutMs: QUERY_TIMEOUT, quietMs: QUIET, log }))
      expect(native).toEqual(expected(s => s.platform === 'linux/arm64'))
      expect(native).not.toContain(emulatorOfArm)
    })
  }, 120_000)

  it('refuses a forged and an unsigned record on every node', async () => {
    // An attacker that skips validation itself and pushes bad records to the network.
    const attackerKey = await generateKeyPair('Ed25519')
    attacker = await createLibp2p({
      privateKey: attackerKey,
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionManager: { maxParallelDials: 8, dialTimeout: 30_000, addressDialTimeout: 30_000, inboundUpgradeTimeout: 30_000 },
      services: {
        identify: identify(),
        ping: ping(),
        dht: kadDHT({ protocol: KAD_PROTOCOL, clientMode: false, alpha: 3, peerInfoMapper: passthroughMapper, validators: { [CAPABILITY_NAMESPACE]: () => {} }, selectors: { [CAPABILITY_NAMESPACE]: () => 0 } })
      }
    })
    // A stock libp2p node has no kiln TLS transport: it reaches kiln nodes on their plain TCP (Noise) address.
    for (const m of members.slice(0, 6)) await attacker.dial(m.node.getMultiaddrs().find(a => !isTcpTlsAddress(a))!)
    const victim = members[2]!
    const genuine = await readCapabilityRecord(victim.node, victim.node.peerId, { from: 'dht' })
    expect(genuine).toBeDefined()
    // 1. forged: the victim's record with a better seq, signed by the attacker's key
    const forgedRecord = { ...genuine!, seq: genuine!.seq + 1_000_000, capabilities: ['gpu', 'cuda', 'evil'] }
    const sig = Buffer.from(await attackerKey.sign(new TextEncoder().encode('x'))).toString('base64url')
    const forged = encodeSignedCapability({ record: forgedRecord, signature: sig })
    // 2. unsigned: a record for a peer id whose key nobody used, with a zero signature
    const ghostKey = await generateKeyPair('Ed25519')
    const ghost = peerIdFromPrivateKey(ghostKey).toString()
    const ghostRecord: CapabilityRecord = { ...forgedRecord, peerId: ghost, seq: 1 }
    const unsigned = encodeSignedCapability({ record: ghostRecord, signature: 'A'.repeat(86) })
    // 3. signed by the right key but for someone else's key slot
    const misplaced = await signCapabilityRecord({ ...ghostRecord }, ghostKey)
    for (const [key, value] of [[capabilityDhtKey(victim.node.peerId.toString()), forged], [capabilityDhtKey(ghost), unsigned], [capabilityDhtKey(members[5]!.node.peerId.toString()), misplaced]] as const) {
      try {
        for await (const _ of attacker.services.dht.put(key, value, { signal: AbortSignal.timeout(20_000) })) { /* drain */ }
      } catch { /* peers refuse: expected */ }
    }
    // Every node reads through the DHT (not from the owner), so what it gets is what the network stored.
    await mapLimit(members, QUERY_CONCURRENCY, async m => {
      const seen = await readCapabilityRecord(m.node, victim.node.peerId, { from: 'dht', signal: AbortSignal.timeout(QUERY_TIMEOUT) })
      expect(seen?.capabilities).not.toContain('evil')
      expect(seen?.peerId).toBe(victim.node.peerId.toString())
      expect(await readCapabilityRecord(m.node, ghost, { signal: AbortSignal.timeout(QUERY_TIMEOUT) })).toBeUndefined()
      const five = await readCapabilityRecord(m.node, members[5]!.node.peerId, { from: 'dht', signal: AbortSignal.timeout(QUERY_TIMEOUT) })
      expect(five?.peerId).toBe(members[5]!.node.peerId.toString())
      // and the DHT's own validator refuses them outright
      await expect(m.node.services.dht.validators[CAPABILITY_NAMESPACE]!(capabilityDhtKey(victim.node.peerId.toString()), forged)).rejects.toThrow()
      await expect(m.node.services.dht.validators[CAPABILITY_NAMESPACE]!(capabilityDhtKey(ghost), unsigned)).rejects.toThrow()
      await expect(m.node.services.dht.validators[CAPABILITY_NAMESPACE]!(capabilityDhtKey(members[5]!.node.peerId.toString()), misplaced)).rejects.toThrow()
    })
  }, 240_000)

  it('drops the record of an agent that is gone once it expires', async () => {
    const gone = members[9]!
    const goneId = gone.node.peerId.toString()
    expect(ids(await findAgents(members[1]!.node, { platform: 'linux/amd64', timeoutMs: QUERY_TIMEOUT, quietMs: QUIET, log }))).toContain(goneId)
    await gone.advertiser!.stop()
    // The newest record it ever signed bounds every copy the DHT may still hold.
    const lapse = Math.max(0, gone.advertiser!.current()!.expiresAt - Date.now())
    await gone.node.stop()
    gone.advertiser = undefined
    await new Promise(resolve => setTimeout(resolve, lapse + 200))
    await mapLimit([members[0]!, members[4]!, members[15]!], 3, async m => {
      const found = ids(await findAgents(m.node, { platform: 'linux/amd64', timeoutMs: QUERY_TIMEOUT, quietMs: QUIET, log }))
      expect(found).not.toContain(goneId)
      expect(found).toContain(members[2]!.node.peerId.toString())
    })
  }, 120_000)
})
