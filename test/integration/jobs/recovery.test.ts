/**
 * A job outlives its builder, over the real libp2p transport: an agent
 * stopped on purpose hands its job back and the requester awards the next
 * offer at once (not after missed heartbeats); an agent that crashed hands
 * it back when it restarts, and with no other offer left the requester
 * publishes the job again and the restarted agent builds it afresh. Also: a
 * two-platform job built by two agents comes back as one OCI index.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { describe, expect, it } from 'vitest'
import type { JobEvent } from '../../../src/requester/index.ts'
import { agent, connect, context, id, open, recipe, requester, rootA, subscribed, tmp } from './harness.ts'
import type { TestAgent } from './harness.ts'

/** Long enough that no builder is lost to silence within a test: what happens is the hand-back's doing. */
const NO_HEARTBEAT_LOSS = { heartbeatMs: 60_000 }

describe('recovery and several platforms over libp2p', () => {
  it('an agent stopped mid-build hands the job back and the next offer gets it at once', { timeout: 90_000 }, async () => {
    await tmp()
    const reqKey = await generateKeyPair('Ed25519')
    const { session, node: rn } = await requester(reqKey, await open('requester'), NO_HEARTBEAT_LOSS)
    const a1 = await agent('a1', rootA, id(reqKey), 'slow')
    const a2 = await agent('a2', rootA, id(reqKey), 'slow')
    await connect(rn, a1.agent.node, a2.agent.node)
    await subscribed(rn, 2)
    const events: JobEvent[] = []
    let stopped: TestAgent | undefined
    const out = await session.requester.submit({
      recipe, context: await session.shareContext(context()), platforms: ['linux/amd64'],
      onEvent: e => {
        events.push(e)
        if (stopped === undefined && e.kind === 'progress' && e.state === 'building') {
          stopped = [a1, a2].find(x => id(x.key) === e.builder)
          void stopped?.agent.stop()
        }
      }
    })
    const gone = id((stopped as TestAgent).key)
    expect(events).toContainEqual({ kind: 'lost', platform: 'linux/amd64', builder: gone, reason: expect.stringMatching(/^handed back: .*agent is stopping/) })
    expect(out.platforms[0]?.builders).toEqual([id([a1, a2].find(x => x !== stopped)!.key)])
    expect(session.journal.get(out.jobId)).toMatchObject({ state: 'succeeded', platforms: [{ state: 'succeeded', builders: out.platforms[0]?.builders }] })
  })

  it('a crashed agent hands the job back when it restarts; with no offer left the job is published again and built afresh', { timeout: 90_000 }, async () => {
    await tmp()
    const reqKey = await generateKeyPair('Ed25519')
    const { session, node: rn } = await requester(reqKey, await open('requester'), NO_HEARTBEAT_LOSS)
    const first = await agent('a', rootA, id(reqKey), 'stuck')
    await connect(rn, first.agent.node)
    await subscribed(rn, 1)
    const events: JobEvent[] = []
    let restarted: Promise<TestAgent> | undefined
    const out = await session.requester.submit({
      recipe, context: await session.shareContext(context()), platforms: ['linux/amd64'],
      onEvent: e => {
        events.push(e)
        if (restarted === undefined && e.kind === 'progress' && e.state === 'building') {
          // A crash: the node goes, the journal still says building. Then the same agent (key, store) starts again.
          restarted = Promise.resolve(first.agent.node.stop()).then(async () => await agent('a', rootA, id(reqKey), 'honest', { key: first.key, store: first.store, dialFirst: rn }))
        }
      }
    })
    const again = await (restarted as Promise<TestAgent>)
    expect(events).toContainEqual({ kind: 'lost', platform: 'linux/amd64', builder: id(first.key), reason: expect.stringMatching(/^handed back: the agent restarted while the job was building/) })
    expect(events).toContainEqual({ kind: 'republished', platform: 'linux/amd64' })
    expect(events.filter(e => e.kind === 'award').map(e => 'builder' in e && e.builder)).toEqual([id(first.key), id(first.key)])
    expect(out.platforms[0]?.builders).toEqual([id(first.key)])
    expect(again.builder.builds).toBe(1)
    expect(again.agent.jobs?.status()).toContainEqual(expect.objectContaining({ jobId: out.jobId, state: 'succeeded', digest: out.platforms[0]?.digest }))
  })

  it('two platforms, two builders: one OCI index over both manifests, every blob in the requester\'s store', { timeout: 90_000 }, async () => {
    await tmp()
    const reqKey = await generateKeyPair('Ed25519')
    const reqStore = await open('requester')
    const { session, node: rn } = await requester(reqKey, reqStore)
    const amd = await agent('amd', rootA, id(reqKey), 'honest', { platform: 'linux/amd64' })
    const arm = await agent('arm', rootA, id(reqKey), 'honest', { platform: 'linux/arm64' })
    await connect(rn, amd.agent.node, arm.agent.node)
    await subscribed(rn, 1, 'linux/amd64')
    await subscribed(rn, 1, 'linux/arm64')
    const out = await session.requester.submit({ recipe, context: await session.shareContext(context()), platforms: ['linux/amd64', 'linux/arm64'] })
    expect(out.platforms.map(p => [p.platform, p.builders])).toEqual([['linux/amd64', [id(amd.key)]], ['linux/arm64', [id(arm.key)]]])
    expect(out.platforms[0]?.digest).not.toBe(out.platforms[1]?.digest)
    const image = await session.keep(out, { tags: [{ repository: 'multi/app', tag: '1' }] })
    expect(image.digest).toBe(out.index?.digest)
    expect(reqStore.refs.find('multi/app', '1')?.digest).toBe(out.index?.digest)
    const index = JSON.parse(new TextDecoder().decode(await reqStore.content.readBytes(image.digest))) as { mediaType: string, manifests: Array<{ digest: string, platform: { os: string, architecture: string } }> }
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json')
    expect(index.manifests.map(m => [`${m.platform.os}/${m.platform.architecture}`, m.digest])).toEqual(out.platforms.map(p => [p.platform, p.digest]))
    for (const p of out.platforms) {
      const manifest = JSON.parse(new TextDecoder().decode(await reqStore.content.readBytes(p.digest as `sha256:${string}`))) as { config: { digest: string }, layers: Array<{ digest: string }> }
      for (const d of [manifest.config.digest, ...manifest.layers.map(l => l.digest)]) expect(await reqStore.content.has(d as `sha256:${string}`)).toBe(true)
    }
    expect(session.journal.get(out.jobId)).toMatchObject({ state: 'succeeded', index: { digest: out.index?.digest } })
  })
})
