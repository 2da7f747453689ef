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
import { capabilityDhtKey, encodeSignedCapability } from '../../../protocols/capability.ts'
import type { CapabilityRecord } from '../../../protocols/capability.ts'
import { CAPABILITY_NAMESPACE, KAD_PROTOCOL } from '../../../protocols/constants.ts'
import { createCapabilityAdvertiser, createKilnNode, findAgents, readCapabilityRecord, signCapabilityRecord } from '../../../src/p2p/index.ts'
import type { CapabilityAdvertiser, CapabilityDescription, KilnNode } from '../../../src/p2p/index.ts'

const N = 20
const TTL = 12_000

interface Member { node: KilnNode, privateKey: PrivateKey, advertiser?: CapabilityAdvertiser }

function describeAgent (platform: string, capabilities: string[]): CapabilityDescription {
  return {
    platforms: [{ platform, features: platform === 'linux/amd64' ? ['avx2', 'avx512f'] : ['sve'] }],
    emulated: [],
    capabilities,
    details: {},
    limits: { cpus: 4, memoryBytes: 8 << 30, diskBytes: 100 << 30 },
    queue: { queued: 0, running: 0 }
  }
}

// agent index -> platform, capabilities
const AGENTS: Record<number, [string, string[]]> = {
  2: ['linux/amd64', ['gpu', 'cuda']],
  5: ['linux/arm64', ['mpi']],
  9: ['linux/amd64', []],
  13: ['linux/ppc64le', ['gpu']],
  17: ['linux/arm64', ['gpu', 'mpi']]
}

describe(`capability discovery on a ${N}-node DHT`, () => {
  const members: Member[] = []
  let attacker: Libp2p<{ dht: KadDHT }> | undefined

  beforeAll(async () => {
    for (let i = 0; i < N; i++) {
      const privateKey = await generateKeyPair('Ed25519')
      members.push({ privateKey, node: await createKilnNode({ privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], dht: { kBucketSize: 8 } }) })
    }
    // Each node knows the first and its predecessor; the DHT finds the rest.
    for (let i = 1; i < N; i++) {
      await members[i]!.node.dial(members[0]!.node.getMultiaddrs()[0]!)
      if (i > 1) await members[i]!.node.dial(members[i - 1]!.node.getMultiaddrs()[0]!)
    }
    await new Promise(resolve => setTimeout(resolve, 1000))
    await Promise.all(Object.entries(AGENTS).map(async ([i, [platform, caps]]) => {
      const m = members[Number(i)]!
      m.advertiser = createCapabilityAdvertiser({ node: m.node, privateKey: m.privateKey, describe: () => describeAgent(platform, caps), ttlMs: TTL, refreshMs: 3000, publishTimeoutMs: 8000 })
      await m.advertiser.start()
    }))
  })

  afterAll(async () => {
    await Promise.all(members.map(async m => { await m.advertiser?.stop(); await m.node.stop() }))
    await attacker?.stop()
  })

  const ids = (records: CapabilityRecord[]): string[] => records.map(r => r.peerId).sort()
  const expected = (pred: (p: string, caps: string[]) => boolean): string[] =>
    Object.entries(AGENTS).filter(([, [p, c]]) => pred(p, c)).map(([i]) => members[Number(i)]!.node.peerId.toString()).sort()

  it('every node finds agents by platform and by capability', async () => {
    const wantArm = expected(p => p === 'linux/arm64')
    const wantGpu = expected((_, c) => c.includes('gpu'))
    const results = []
    // Five nodes at a time: the test machine has two cores.
    for (let i = 0; i < N; i += 5) {
      results.push(...await Promise.all(members.slice(i, i + 5).map(async m => ({
        arm: ids(await findAgents(m.node, { platform: 'linux/arm64', timeoutMs: 8000 })),
        gpu: ids(await findAgents(m.node, { capability: 'gpu', timeoutMs: 8000 })),
        gpuArm: ids(await findAgents(m.node, { platform: 'linux/arm64', capability: 'gpu', timeoutMs: 8000 }))
      }))))
    }
    for (const r of results) {
      expect(r.arm).toEqual(wantArm)
      expect(r.gpu).toEqual(wantGpu)
      expect(r.gpuArm).toEqual(expected((p, c) => p === 'linux/arm64' && c.includes('gpu')))
    }
  })

  it('refuses a forged and an unsigned record on every node', async () => {
    // An attacker that skips validation itself and pushes bad records to the network.
    const attackerKey = await generateKeyPair('Ed25519')
    attacker = await createLibp2p({
      privateKey: attackerKey,
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: {
        identify: identify(),
        ping: ping(),
        dht: kadDHT({ protocol: KAD_PROTOCOL, clientMode: false, peerInfoMapper: passthroughMapper, validators: { [CAPABILITY_NAMESPACE]: () => {} }, selectors: { [CAPABILITY_NAMESPACE]: () => 0 } })
      }
    })
    for (const m of members.slice(0, 6)) await attacker.dial(m.node.getMultiaddrs()[0]!)
    const victim = members[2]!
    const genuine = await readCapabilityRecord(victim.node, victim.node.peerId)
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
        for await (const _ of attacker.services.dht.put(key, value, { signal: AbortSignal.timeout(5000) })) { /* drain */ }
      } catch { /* peers refuse: expected */ }
    }
    await Promise.all(members.map(async m => {
      const seen = await readCapabilityRecord(m.node, victim.node.peerId, { signal: AbortSignal.timeout(5000) })
      expect(seen?.capabilities).not.toContain('evil')
      expect(seen?.peerId).toBe(victim.node.peerId.toString())
      expect(await readCapabilityRecord(m.node, ghost, { signal: AbortSignal.timeout(6000) })).toBeUndefined()
      const five = await readCapabilityRecord(m.node, members[5]!.node.peerId, { signal: AbortSignal.timeout(6000) })
      expect(five?.peerId).toBe(members[5]!.node.peerId.toString())
      // and the DHT's own validator refuses them outright
      await expect(m.node.services.dht.validators[CAPABILITY_NAMESPACE]!(capabilityDhtKey(victim.node.peerId.toString()), forged)).rejects.toThrow()
    }))
  })

  it('drops the record of an agent that is gone once it expires', async () => {
    const gone = members[9]!
    const goneId = gone.node.peerId.toString()
    expect(ids(await findAgents(members[1]!.node, { platform: 'linux/amd64' }))).toContain(goneId)
    await gone.advertiser!.stop()
    const lapse = gone.advertiser!.current()!.expiresAt - Date.now()
    await gone.node.stop()
    gone.advertiser = undefined
    await new Promise(resolve => setTimeout(resolve, lapse + 200))
    for (const m of [members[0]!, members[4]!, members[15]!]) {
      const found = ids(await findAgents(m.node, { platform: 'linux/amd64', timeoutMs: 5000 }))
      expect(found).not.toContain(goneId)
      expect(found).toContain(members[2]!.node.peerId.toString())
    }
  })
})
