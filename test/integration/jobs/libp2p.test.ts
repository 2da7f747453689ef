/**
 * Signed jobs over real libp2p nodes on loopback (one process): gossip and
 * /kiln/job/1.0.0 streams, the context fetched by the agent over
 * /kiln/blob/1.0.0, blobs pulled back by the requester, journals on both
 * sides. The builder is a fake that writes a real image into the agent's
 * store (the rootless builder runs in the e2e test).
 */
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import * as lp from 'it-length-prefixed'
import { describe, expect, it } from 'vitest'
import { JOB_PROTOCOL } from '../../../protocols/job.ts'
import { canonicalBytes } from '../../../protocols/envelope.ts'
import { createLeases } from '../../../src/content/index.ts'
import { seal } from '../../../src/jobs/index.ts'
import type { JobEvent } from '../../../src/requester/index.ts'
import { agent, connect, context, id, open, recipe, requester, rootA, rootB, subscribed, tmp } from './harness.ts'

describe('signed jobs over libp2p', () => {
  it('awards the trusted institution only, fetches context and image peer to peer, and journals both sides', { timeout: 90_000 }, async () => {
    await tmp()
    const reqKey = await generateKeyPair('Ed25519')
    const reqStore = await open('requester')
    const { session, node: rn } = await requester(reqKey, reqStore)
    const a = await agent('a', rootA, id(reqKey))
    const b = await agent('b', rootB, id(reqKey))
    await connect(rn, a.agent.node, b.agent.node)
    await subscribed(rn, 2)
    const ctxDir = context()
    const ctx = await session.shareContext(ctxDir)
    const events: JobEvent[] = []
    const out = await session.requester.submit({ recipe, context: ctx, platforms: ['linux/amd64'], onEvent: e => events.push(e) })

    const p = out.platforms[0]!
    expect(p.builders).toEqual([id(a.key)])
    expect(b.builder.builds).toBe(0)
    expect(events).toContainEqual(expect.objectContaining({ kind: 'refused', builder: id(b.key) }))
    const refused = events.find(e => e.kind === 'refused')
    expect(refused !== undefined && 'reason' in refused ? refused.reason : '').toMatch(/not trusted/)
    // The context went to A over the network, and the image came back.
    const input = await readFile(join(ctxDir, 'input.txt'), 'utf8')
    expect(events).toContainEqual(expect.objectContaining({ kind: 'log', lines: [`context says ${input.trim()}`] }))
    expect(await a.store.content.has(ctx.digest)).toBe(true)
    const manifest = JSON.parse(new TextDecoder().decode(await reqStore.content.readBytes(p.digest as `sha256:${string}`))) as { layers: Array<{ digest: `sha256:${string}` }> }
    expect(new TextDecoder().decode(await reqStore.content.readBytes(manifest.layers[0]!.digest))).toBe(`layer for linux/amd64: ${input}`)
    expect(p.provenance).toMatchObject({ builder: id(a.key), contextDigest: ctx.digest, platform: 'linux/amd64', sandbox: 'fake' })

    // Journals: the requester's job and A's accepted job, both finished.
    const stored = session.journal.get(out.jobId)
    expect(stored?.state).toBe('succeeded')
    expect(stored?.platforms[0]).toMatchObject({ state: 'succeeded', digest: p.digest, builders: [id(a.key)], cachedSteps: 0, steps: 1 })
    expect(session.journal.logs(out.jobId).map(l => l.line)).toContain(`context says ${input.trim()}`)
    expect(a.agent.jobs?.status()).toContainEqual(expect.objectContaining({ jobId: out.jobId, state: 'succeeded', digest: p.digest }))
    // kiln gc keeps the image on the agent for its requester, the context on the requester for its builders,
    // and lets the agent's copy of the context go once the job is done.
    expect([...createLeases(a.store.db).held()]).toEqual(expect.arrayContaining([p.digest, ...manifest.layers.map(l => l.digest)]))
    expect(createLeases(reqStore.db).held().has(ctx.digest)).toBe(true)
    await expect.poll(() => createLeases(a.store.db).held().has(ctx.digest), { timeout: 10_000, interval: 50 }).toBe(false)
  })

  it('drops a result altered after signing, sent from the awarded builder over the real protocol', { timeout: 90_000 }, async () => {
    await tmp()
    const reqKey = await generateKeyPair('Ed25519')
    const { session, node: rn, warnings } = await requester(reqKey, await open('requester'))
    const a = await agent('a', rootA, id(reqKey), 'slow')
    await connect(rn, a.agent.node)
    await subscribed(rn, 1)
    const jobId = 'forged-result-test'
    let forged: Promise<void> | undefined
    const sendForged = async (): Promise<void> => {
      const { envelope } = await seal(a.key, 'result', { jobId, platform: 'linux/amd64', status: 'failed', error: 'nothing' })
      const altered = { ...envelope, payload: { ...envelope.payload, error: 'altered after signing' } }
      const stream = await a.agent.node.dialProtocol(rn.peerId, JOB_PROTOCOL)
      stream.send(lp.encode.single(canonicalBytes({ certs: [], envelope: altered })).subarray())
      await stream.close()
    }
    const out = await session.requester.submit({
      jobId, recipe, context: await session.shareContext(context()), platforms: ['linux/amd64'],
      onEvent: e => { if (e.kind === 'progress' && e.state === 'building') forged ??= sendForged() }
    })
    await forged
    expect(out.platforms[0]?.builders).toEqual([id(a.key)])
    expect(warnings.some(w => /BadSignatureError/.test(w))).toBe(true)
  })

  it('refuses a result whose manifest names blobs the result does not list', { timeout: 90_000 }, async () => {
    await tmp()
    const reqKey = await generateKeyPair('Ed25519')
    const { session, node: rn } = await requester(reqKey, await open('requester'))
    const liar = await agent('liar', rootA, id(reqKey), 'unlisted')
    await connect(rn, liar.agent.node)
    await subscribed(rn, 1)
    const done = session.requester.submit({ recipe, context: await session.shareContext(context()), platforms: ['linux/amd64'] })
    await expect(done).rejects.toMatchObject({ name: 'ResultInvalidError', message: expect.stringMatching(/does not list/) })
    const stored = session.journal.list(1)[0]
    expect(stored?.state).toBe('failed')
    expect(stored?.platforms[0]?.error).toMatch(/does not list/)
  })

  it('re-awards the platform when the builder dies mid-build', { timeout: 90_000 }, async () => {
    await tmp()
    const reqKey = await generateKeyPair('Ed25519')
    const { session, node: rn } = await requester(reqKey, await open('requester'))
    const a1 = await agent('a1', rootA, id(reqKey), 'slow')
    const a2 = await agent('a2', rootA, id(reqKey), 'slow')
    await connect(rn, a1.agent.node, a2.agent.node)
    await subscribed(rn, 2)
    let victim: string | undefined
    const events: JobEvent[] = []
    const out = await session.requester.submit({
      recipe, context: await session.shareContext(context()), platforms: ['linux/amd64'],
      onEvent: e => {
        events.push(e)
        if (victim === undefined && e.kind === 'progress' && e.state === 'building') {
          victim = e.builder
          // A crash: the node goes away, no cancelled result is sent.
          void [a1, a2].find(x => id(x.key) === e.builder)?.agent.node.stop()
        }
      }
    })
    expect(victim).toBeDefined()
    expect(events).toContainEqual({ kind: 'lost', platform: 'linux/amd64', builder: victim })
    expect(out.platforms[0]?.builders).toHaveLength(1)
    expect(out.platforms[0]?.builders[0]).not.toBe(victim)
    expect(session.journal.get(out.jobId)?.platforms[0]?.builders).toEqual(out.platforms[0]?.builders)
  })

  it('a restarted requester resumes a job from its journal and gets the result the builder kept', { timeout: 90_000 }, async () => {
    await tmp()
    const reqKey = await generateKeyPair('Ed25519')
    const reqStore = await open('requester')
    const first = await requester(reqKey, reqStore)
    const a = await agent('a', rootA, id(reqKey), 'slow')
    await connect(first.node, a.agent.node)
    await subscribed(first.node, 1)
    const ctx = await first.session.shareContext(context())
    const done = first.session.requester.submit({
      recipe, context: ctx, platforms: ['linux/amd64'],
      onEvent: e => { if (e.kind === 'progress' && e.state === 'building') { void first.session.stop().then(async () => { await first.node.stop() }) } }
    })
    await expect(done).rejects.toMatchObject({ name: 'RequesterStoppedError' })
    const jobId = reqStore.db.sql.prepare('SELECT id FROM requester_jobs').get() as { id: string }
    // The agent finishes while nobody listens, and keeps the result.
    await expect.poll(() => a.agent.jobs?.status().find(s => s.jobId === jobId.id)?.state, { timeout: 20_000, interval: 100 }).toBe('succeeded')
    expect(first.session.journal.get(jobId.id)?.state).toBe('running')

    const second = await requester(reqKey, reqStore)
    await connect(second.node, a.agent.node)
    const spec = second.session.journal.resumeSpec(jobId.id)
    expect(spec?.platforms).toEqual([{ platform: 'linux/amd64', builders: [id(a.key)] }])
    const out = await second.session.requester.resume(spec!)
    expect(out.platforms[0]?.builders).toEqual([id(a.key)])
    expect(a.builder.builds).toBe(1)
    expect(await reqStore.content.has(out.platforms[0]!.digest as `sha256:${string}`)).toBe(true)
    expect(second.session.journal.get(jobId.id)?.state).toBe('succeeded')
  })

  it('cancel over the network stops the build and removes the unpacked context', { timeout: 90_000 }, async () => {
    await tmp()
    const reqKey = await generateKeyPair('Ed25519')
    const { session, node: rn } = await requester(reqKey, await open('requester'))
    const a = await agent('a', rootA, id(reqKey), 'slow')
    await connect(rn, a.agent.node)
    await subscribed(rn, 1)
    const ac = new AbortController()
    const done = session.requester.submit({
      recipe, context: await session.shareContext(context()), platforms: ['linux/amd64'], signal: ac.signal,
      onEvent: e => { if (e.kind === 'progress' && e.state === 'building') ac.abort() }
    })
    await expect(done).rejects.toMatchObject({ name: 'JobCancelledError' })
    const jobId = session.journal.list(1)[0]?.id
    await expect.poll(() => a.agent.jobs?.status().find(s => s.jobId === jobId)?.state, { timeout: 20_000, interval: 50 }).toBe('cancelled')
    // The result goes out first; the context dir is removed right after.
    await expect.poll(async () => await readdir(join(a.store.root, 'jobs')), { timeout: 10_000, interval: 50 }).toEqual([])
    expect(session.journal.get(jobId ?? '')?.state).toBe('cancelled')
  })
})
