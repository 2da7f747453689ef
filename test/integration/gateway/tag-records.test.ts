/**
 * Signed tag records over a real DHT (three nodes on loopback, one
 * process): a record published by one node is resolved by another only if
 * the resolver's trust policy allows the signer as builder or gateway; of
 * two trusted signers the newest record wins; a signer's newer seq replaces
 * its older record; forged values are refused by the DHT's validator.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tagDhtKey } from '../../../protocols/tag.ts'
import { createKilnNode } from '../../../src/p2p/index.ts'
import type { KilnNode } from '../../../src/p2p/index.ts'
import { publishTagRecord, resolveTagRecord, signTagRecord } from '../../../src/p2p/tag-records.ts'
import type { TagTrust } from '../../../src/p2p/tag-records.ts'
import { createTrustPolicy, PolicyConfig } from '../../../src/trust/index.ts'

const digest = (c: string): string => `sha256:${c.repeat(64)}`
const target = (d: string): { repository: string, tag: string, digest: string, mediaType: string, size: number } =>
  ({ repository: 'hpc/app', tag: 'v1', digest: d, mediaType: 'application/vnd.oci.image.index.v1+json', size: 10 })

describe('tag records on the DHT', () => {
  const keys: PrivateKey[] = []
  const nodes: KilnNode[] = []

  beforeAll(async () => {
    for (let i = 0; i < 3; i++) {
      const privateKey = await generateKeyPair('Ed25519')
      keys.push(privateKey)
      nodes.push(await createKilnNode({ privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], dht: { initialQuerySelfInterval: 200 } }))
    }
    for (let i = 1; i < nodes.length; i++) for (let j = 0; j < i; j++) await nodes[i]!.dial(nodes[j]!.getMultiaddrs()[0]!)
  }, 60_000)

  afterAll(async () => { await Promise.all(nodes.map(async n => { await n.stop() })) })

  const trusting = (...peers: number[]): TagTrust => createTrustPolicy(PolicyConfig.parse({
    version: 1,
    peers: peers.map(i => ({ peer: nodes[i]!.peerId.toString(), roles: ['gateway'] }))
  }))

  it('resolves a trusted signer\'s record, ignores an untrusted one, and the newest trusted record wins', async () => {
    const first = await publishTagRecord(nodes[1]!, keys[1]!, target(digest('a')), { signal: AbortSignal.timeout(20_000) })
    expect(first.storedOn).toBeGreaterThan(0)

    const skipped: string[] = []
    const untrusted = await resolveTagRecord(nodes[0]!, 'hpc/app', 'v1', { trust: trusting(2), onSkip: s => { skipped.push(s) } })
    expect(untrusted).toBeUndefined()
    expect(skipped).toContain(nodes[1]!.peerId.toString())

    const found = await resolveTagRecord(nodes[0]!, 'hpc/app', 'v1', { trust: trusting(1) })
    expect(found?.payload.digest).toBe(digest('a'))
    expect(found?.signer).toBe(nodes[1]!.peerId.toString())

    await new Promise(resolve => setTimeout(resolve, 5))
    await publishTagRecord(nodes[2]!, keys[2]!, target(digest('b')), { signal: AbortSignal.timeout(20_000) })
    expect((await resolveTagRecord(nodes[0]!, 'hpc/app', 'v1', { trust: trusting(1, 2) }))?.payload.digest).toBe(digest('b'))
    expect((await resolveTagRecord(nodes[0]!, 'hpc/app', 'v1', { trust: trusting(1) }))?.payload.digest).toBe(digest('a'))
  }, 90_000)

  it('replaces a signer\'s record when it publishes a newer one', async () => {
    const published = await publishTagRecord(nodes[1]!, keys[1]!, target(digest('c')), { signal: AbortSignal.timeout(20_000) })
    expect(published.storedOn).toBeGreaterThan(0)
    expect((await resolveTagRecord(nodes[0]!, 'hpc/app', 'v1', { trust: trusting(1) }))?.payload.digest).toBe(digest('c'))
  }, 90_000)

  it('refuses a record stored under another signer\'s key', async () => {
    const { value } = await signTagRecord(keys[2]!, target(digest('e')))
    const key = tagDhtKey('hpc/app', 'v1', nodes[1]!.peerId.toString())
    // Peers' validators refuse it (whatever the put reports); the signer's own record still resolves.
    let accepted = 0
    try {
      for await (const e of nodes[2]!.services.dht.put(key, value, { signal: AbortSignal.timeout(10_000) })) if (e.name === 'PEER_RESPONSE' && e.messageName === 'PUT_VALUE') accepted++
    } catch { /* refused */ }
    expect(accepted).toBe(0)
    expect((await resolveTagRecord(nodes[0]!, 'hpc/app', 'v1', { trust: trusting(1) }))?.payload.digest).toBe(digest('c'))
  }, 60_000)
})
