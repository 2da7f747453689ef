/**
 * What a node must refuse, over the real libp2p transport: forged, replayed,
 * expired and oversized jobs and jobs or awards from an untrusted requester
 * (refused by the agent, each with its reason), and results from a peer
 * that was not awarded or is no longer trusted as a builder (refused by the
 * requester). In every case nothing is built and nothing is stored: the
 * agent's store and `agent_jobs` and the requester's store stay as they were.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import * as lp from 'it-length-prefixed'
import { describe, expect, it } from 'vitest'
import { JOB_PROTOCOL, MAX_RECIPE_BYTES, encodeFrame } from '../../../protocols/job.ts'
import type { JobPayload } from '../../../protocols/job.ts'
import { canonicalBytes } from '../../../protocols/envelope.ts'
import { sha256Digest } from '../../../src/content/digest.ts'
import type { LocalStore } from '../../../src/content/index.ts'
import type { KilnNode } from '../../../src/p2p/index.ts'
import { seal } from '../../../src/jobs/index.ts'
import type { JobEvent } from '../../../src/requester/index.ts'
import { PolicyConfig, createTrustPolicy, signEnvelope } from '../../../src/trust/index.ts'
import type { TrustPolicy } from '../../../src/trust/index.ts'
import { agent, connect, context, id, open, recipe, requester, rootA, rootB, subscribed, tmp } from './harness.ts'
import type { TestAgent } from './harness.ts'

async function blobsOf (store: LocalStore): Promise<string[]> {
  const out: string[] = []
  for await (const b of store.content.walk()) out.push(b.digest)
  return out.sort()
}

/** What must not change when a message is refused. */
async function snapshot (a: TestAgent, req: LocalStore): Promise<unknown> {
  return {
    agentBlobs: await blobsOf(a.store),
    agentJobs: a.store.db.sql.prepare('SELECT job_id, platform, state FROM agent_jobs').all(),
    agentBuilds: a.builder.builds,
    requesterBlobs: await blobsOf(req)
  }
}

/** Sends frames as they are (forged, replayed...) from `from` to `to` on /kiln/job/1.0.0. */
async function sendRaw (from: KilnNode, to: KilnNode, frames: Uint8Array[]): Promise<void> {
  const stream = await from.dialProtocol(to.peerId, JOB_PROTOCOL)
  for (const f of frames) stream.send(lp.encode.single(f).subarray())
  await stream.close()
}

describe('refused over libp2p, with nothing built or stored', () => {
  it('the agent refuses forged, replayed, expired, oversized and untrusted jobs and awards, each with its reason', { timeout: 90_000 }, async () => {
    await tmp()
    const reqKey = await generateKeyPair('Ed25519')
    const reqStore = await open('requester')
    const { session, node: rn } = await requester(reqKey, reqStore)
    const log: string[] = []
    const a = await agent('a', rootA, id(reqKey), 'honest', { log })
    await connect(rn, a.agent.node)
    const ctx = await session.shareContext(context())
    const before = await snapshot(a, reqStore)
    const payload = (jobId: string, extra: Partial<JobPayload> = {}): JobPayload => ({
      jobId, recipe: { ...recipe, digest: sha256Digest(recipe.text) }, context: ctx, platforms: ['linux/amd64'], requirements: [], buildArgs: {}, network: false, ...extra
    })
    const refusedWith = async (pattern: RegExp, count = 1): Promise<void> => {
      await expect.poll(() => log.filter(l => pattern.test(l)).length, { timeout: 15_000, interval: 20 }).toBeGreaterThanOrEqual(count)
    }

    // Forged: the payload changed after signing.
    const { envelope: signed } = await seal(reqKey, 'job', payload('forged-job-1'))
    await sendRaw(rn, a.agent.node, [canonicalBytes({ certs: [], envelope: { ...signed, payload: { ...signed.payload, output: 'evil:1' } } })])
    await refusedWith(/dropped frame .*BadSignatureError: job envelope signature does not verify/)

    // Replayed: the same valid job twice (the first one only draws an offer).
    const { frame } = await seal(reqKey, 'job', payload('replayed-job-1'))
    await sendRaw(rn, a.agent.node, [frame, frame])
    await refusedWith(/dropped frame .*ReplayError: job envelope .* was seen before/)

    // Expired: as a job, and inside an award that would otherwise start a build.
    const old = await signEnvelope(reqKey, 'job', payload('expired-job-1'), { ttlMs: 60_000, now: Date.now() - 3_600_000 })
    await sendRaw(rn, a.agent.node, [encodeFrame({ envelope: old, certs: [] })])
    const { frame: award } = await seal(reqKey, 'award', { jobId: 'expired-job-1', platform: 'linux/amd64', builder: id(a.key), job: old })
    await sendRaw(rn, a.agent.node, [award])
    await refusedWith(/dropped frame .*ExpiredError: envelope expired at/, 2)

    // Oversized: a recipe over 256 KiB, a context over 8 GiB. The requester will not even send them.
    const big = 'FROM scratch\n' + '#'.repeat(MAX_RECIPE_BYTES)
    const { frame: bigRecipe } = await seal(reqKey, 'job', payload('oversized-recipe', { recipe: { ...recipe, text: big, digest: sha256Digest(big) } }))
    const { frame: bigContext } = await seal(reqKey, 'job', payload('oversized-context', { context: { digest: ctx.digest, size: 9 * 1024 ** 3 } }))
    await sendRaw(rn, a.agent.node, [bigRecipe, bigContext])
    await refusedWith(/EnvelopeInvalidError: job payload: recipe\.text: /)
    await refusedWith(/EnvelopeInvalidError: job payload: context\.size: /)
    await expect(session.requester.submit({ recipe: { ...recipe, text: big }, context: ctx, platforms: ['linux/amd64'] })).rejects.toMatchObject({ name: 'JobInvalidError', message: expect.stringMatching(/recipe\.text/) })
    await expect(session.requester.submit({ recipe, context: { digest: ctx.digest, size: 9 * 1024 ** 3 }, platforms: ['linux/amd64'] })).rejects.toMatchObject({ name: 'JobInvalidError', message: expect.stringMatching(/context\.size/) })

    // An untrusted requester: its direct job is declined with the reason, its award ignored with one.
    const strangerKey = await generateKeyPair('Ed25519')
    const stranger = await requester(strangerKey, await open('stranger'))
    await connect(stranger.node, a.agent.node)
    const events: JobEvent[] = []
    await expect(stranger.session.requester.submit({ recipe, context: ctx, platforms: ['linux/amd64'], to: [id(a.key)], onEvent: e => events.push(e) }))
      .rejects.toMatchObject({ name: 'NoOffersError', message: expect.stringMatching(/declined: requester not trusted: .* is not trusted as requester/) })
    expect(events).toContainEqual(expect.objectContaining({ kind: 'decline', builder: id(a.key), reason: expect.stringMatching(/^requester not trusted/) }))
    const { envelope: strangerJob } = await seal(strangerKey, 'job', payload('stranger-award'))
    const { frame: strangerAward } = await seal(strangerKey, 'award', { jobId: 'stranger-award', platform: 'linux/amd64', builder: id(a.key), job: strangerJob })
    await sendRaw(stranger.node, a.agent.node, [strangerAward])
    await refusedWith(/award from untrusted .* is not trusted as requester/)

    // A job asking for the network (kiln submit --network=default) from a trusted requester: declined by the agent's policy, saying where it is set.
    const netEvents: JobEvent[] = []
    await expect(session.requester.submit({ recipe, context: ctx, platforms: ['linux/amd64'], network: true, to: [id(a.key)], onEvent: e => netEvents.push(e) }))
      .rejects.toMatchObject({ name: 'NoOffersError' })
    expect(netEvents).toContainEqual(expect.objectContaining({ kind: 'decline', builder: id(a.key), reason: expect.stringMatching(/asks for the network .*agent\.allowNetwork/) }))

    expect(await snapshot(a, reqStore)).toEqual(before)
    expect(await a.store.content.has(ctx.digest)).toBe(false)
  })

  it('the requester refuses results from a peer it did not award and from a builder it no longer trusts, and stores none of their blobs', { timeout: 90_000 }, async () => {
    await tmp()
    const reqKey = await generateKeyPair('Ed25519')
    const reqStore = await open('requester')
    // Trusts uni-a's builders, minus any the test revokes after the award.
    const base = createTrustPolicy(PolicyConfig.parse({ version: 1, roots: [{ key: id(rootA), roles: ['builder'] }] }))
    const revoked = new Set<string>()
    const policy: TrustPolicy = {
      config: base.config,
      allows: async (peer, role, certs, o) => role === 'builder' && revoked.has(peer) ? { ok: false, reason: `${peer} was revoked` } : await base.allows(peer, role, certs, o)
    }
    const { session, node: rn } = await requester(reqKey, reqStore, { policy })
    const a1 = await agent('a1', rootA, id(reqKey), 'salted')
    const a2 = await agent('a2', rootA, id(reqKey), 'salted')
    // uni-b's agent is not trusted as a builder: it builds nothing, but tries to slip a result in.
    const intruder = await agent('intruder', rootB, id(reqKey), 'salted')
    await connect(rn, a1.agent.node, a2.agent.node, intruder.agent.node)
    await subscribed(rn, 3)
    const ctx = await session.shareContext(context())
    const intruderManifest = await intruder.store.content.ingest(new TextEncoder().encode('{"schemaVersion":2,"layers":[]}'))
    const events: JobEvent[] = []
    let first: TestAgent | undefined
    let slipped: Promise<void> | undefined
    const slipIn = async (jobId: string): Promise<void> => {
      const now = Date.now()
      const { frame } = await seal(intruder.key, 'result', {
        jobId, platform: 'linux/amd64', status: 'succeeded', ...intruderManifest, mediaType: 'application/vnd.oci.image.manifest.v1+json', blobs: [],
        provenance: { recipeDigest: sha256Digest(recipe.text), contextDigest: ctx.digest, baseDigests: [], builder: id(intruder.key), platform: 'linux/amd64', startedAt: now, finishedAt: now }
      })
      await sendRaw(intruder.agent.node, rn, [frame])
    }
    const jobId = 'refused-results-1'
    const out = await session.requester.submit({
      jobId, recipe, context: ctx, platforms: ['linux/amd64'],
      onEvent: e => {
        events.push(e)
        if (first === undefined && e.kind === 'progress' && e.state === 'building') {
          first = [a1, a2].find(x => id(x.key) === e.builder)
          revoked.add(e.builder)
          slipped = slipIn(jobId)
        }
      }
    })
    await slipped
    expect(first).toBeDefined()
    const second = [a1, a2].find(x => x !== first) as TestAgent
    expect(out.platforms[0]?.builders).toEqual([id(second.key)])
    expect(events).toContainEqual(expect.objectContaining({ kind: 'refused', of: 'result', builder: id(intruder.key), reason: 'this peer was not awarded the platform' }))
    expect(events).toContainEqual(expect.objectContaining({ kind: 'refused', of: 'result', builder: id((first as TestAgent).key), reason: expect.stringMatching(/was revoked/) }))
    expect(events).toContainEqual(expect.objectContaining({ kind: 'lost', builder: id((first as TestAgent).key), reason: expect.stringMatching(/^result refused/) }))
    expect(intruder.builder.builds).toBe(0)
    // The revoked builder did build (its own image), but none of it reached the requester's store; the intruder's neither.
    const firstDigest = (first as TestAgent).agent.jobs?.status().find(s => s.jobId === out.jobId)?.digest
    expect(firstDigest).toMatch(/^sha256:/)
    expect(firstDigest).not.toBe(out.platforms[0]?.digest)
    expect(await reqStore.content.has(firstDigest as `sha256:${string}`)).toBe(false)
    expect(await reqStore.content.has(intruderManifest.digest)).toBe(false)
    expect(await reqStore.content.has(out.platforms[0]?.digest as `sha256:${string}`)).toBe(true)
  })
})
