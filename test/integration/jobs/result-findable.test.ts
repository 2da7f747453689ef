/**
 * A job's image is findable the moment its result arrives (protocols/job.md
 * §5, step 5): the agent announces the image in the DHT before it sends the
 * result, so a `kiln pull` on another node right after `kiln submit` finds a
 * provider. Real libp2p nodes on loopback (one process): a requester, an
 * agent with the fake builder, and a third node that knows the requester
 * only, which looks the image's manifest up once, as soon as the requester
 * has the result.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { describe, expect, it } from 'vitest'
import { digestToCid } from '../../../src/content/index.ts'
import type { Digest } from '../../../src/content/index.ts'
import type { KilnNode } from '../../../src/p2p/index.ts'
import { agent, connect, context, id, node, open, recipe, requester, rootA, subscribed, tmp } from './harness.ts'

/** The providers one DHT lookup from `from` finds for a digest (one query, not a search that waits for more), up to `wanted`. */
async function lookUp (from: KilnNode, digest: Digest, wanted: string): Promise<string[]> {
  const found: string[] = []
  for await (const event of from.services.dht.findProviders(digestToCid(digest), { signal: AbortSignal.timeout(20_000) })) {
    if (event.name === 'PROVIDER') found.push(...event.providers.map(p => p.id.toString()))
    if (found.includes(wanted)) break
  }
  return found
}

describe('a job\'s result', () => {
  it('is findable in the DHT as soon as the requester has the result message', { timeout: 90_000 }, async () => {
    await tmp()
    const reqKey = await generateKeyPair('Ed25519')
    const { session, node: rn } = await requester(reqKey, await open('requester'))
    const a = await agent('a', rootA, id(reqKey))
    const puller = await node(await generateKeyPair('Ed25519'))
    await connect(rn, a.agent.node)
    await connect(puller, rn)
    await subscribed(rn, 1)
    // Started when the result has arrived and been checked, before the requester fetches anything.
    let lookup: Promise<string[]> | undefined
    const out = await session.requester.submit({
      recipe, context: await session.shareContext(context()), platforms: ['linux/amd64'],
      onEvent: e => { if (e.kind === 'fetching') lookup ??= lookUp(puller, e.digest as Digest, id(a.key)) }
    })
    expect(out.platforms[0]?.builders).toEqual([id(a.key)])
    expect(lookup).toBeDefined()
    expect(await lookup).toContain(id(a.key))
  })
})
