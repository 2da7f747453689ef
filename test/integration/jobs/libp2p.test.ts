/**
 * Signed jobs over real libp2p nodes on loopback (one process): gossip and
 * /kiln/job/1.0.0 streams, the context fetched by the agent over
 * /kiln/blob/1.0.0, blobs pulled back by the requester, journals on both
 * sides. The builder is a fake that writes a real image into the agent's
 * store (the rootless builder runs in the e2e test).
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import * as lp from 'it-length-prefixed'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startAgent } from '../../../agent/runtime.ts'
import type { Agent } from '../../../agent/runtime.ts'
import { detectCapabilities } from '../../../agent/capabilities.ts'
import type { BuildOutput, JobBuilder } from '../../../agent/jobs/index.ts'
import { JOB_PROTOCOL } from '../../../protocols/job.ts'
import { canonicalBytes } from '../../../protocols/envelope.ts'
import { createLeases, openLocalStore } from '../../../src/content/index.ts'
import type { ContentStore, LocalStore } from '../../../src/content/index.ts'
import { createKilnNode } from '../../../src/p2p/index.ts'
import type { KilnNode } from '../../../src/p2p/index.ts'
import { seal, startRequesterSession } from '../../../src/requester/index.ts'
import type { JobEvent, RequesterSession } from '../../../src/requester/index.ts'
import { PolicyConfig, createTrustPolicy, issueCertificate } from '../../../src/trust/index.ts'
import type { Ed25519PrivateKey } from '../../../src/trust/index.ts'

const enc = new TextEncoder()
const id = (k: Ed25519PrivateKey): string => peerIdFromPrivateKey(k).toString()

/**
 * Builds a one-layer image whose layer is the context's `input.txt` (so the
 * test sees that the context travelled). `mode`: 'honest', 'slow' (waits
 * for abort or 3 s), 'unlisted' (omits its layer from the result: a lie).
 */
function fakeBuilder (store: ContentStore, mode: 'honest' | 'slow' | 'unlisted' = 'honest'): JobBuilder & { builds: number } {
  const b = {
    builds: 0,
    async build (req: Parameters<JobBuilder['build']>[0], o: Parameters<JobBuilder['build']>[1]): Promise<BuildOutput> {
      b.builds++
      o.onProgress(1, 1, 'RUN fake')
      const input = await readFile(join(req.contextDir, 'input.txt'), 'utf8')
      o.onLog(`context says ${input.trim()}`)
      if (mode === 'slow') {
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(resolve, 3000)
          o.signal.addEventListener('abort', () => { clearTimeout(t); reject(o.signal.reason as Error) }, { once: true })
        })
      }
      const layer = await store.ingest(enc.encode(`layer for ${req.platform}: ${input}`))
      const config = await store.ingest(enc.encode(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } })))
      const manifest = await store.ingest(enc.encode(JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }]
      })))
      return {
        ...manifest,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        blobs: mode === 'unlisted' ? [config] : [config, layer],
        baseDigests: [],
        sandbox: 'fake',
        cachedSteps: 0,
        steps: 1
      }
    }
  }
  return b
}

let rootA: Ed25519PrivateKey
let rootB: Ed25519PrivateKey
let dir: string
const cleanups: Array<() => Promise<void>> = []

beforeAll(async () => {
  rootA = await generateKeyPair('Ed25519')
  rootB = await generateKeyPair('Ed25519')
})
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
})

async function tmp (): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'kiln-jobs-p2p-'))
  cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

async function node (key: Ed25519PrivateKey): Promise<KilnNode> {
  const n = await createKilnNode({ privateKey: key, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false })
  cleanups.push(async () => { await n.stop() })
  return n
}

async function open (name: string): Promise<LocalStore> {
  const s = await openLocalStore(join(dir, name))
  cleanups.push(async () => { s.close() })
  return s
}

interface TestAgent { agent: Agent, store: LocalStore, builder: JobBuilder & { builds: number }, key: Ed25519PrivateKey }

async function agent (name: string, root: Ed25519PrivateKey, requester: string, mode: 'honest' | 'slow' | 'unlisted' = 'honest'): Promise<TestAgent> {
  const key = await generateKeyPair('Ed25519')
  const store = await open(name)
  const builder = fakeBuilder(store.content, mode)
  const cert = await issueCertificate(root, { subject: id(key), roles: ['builder'], institution: root === rootA ? 'uni-a' : 'uni-b' })
  const a = await startAgent({
    node: await node(key),
    privateKey: key,
    store: store.content,
    provideStore: false,
    describe: async () => await detectCapabilities({ platforms: ['linux/amd64'], dataDir: store.root }),
    jobs: {
      db: store.db,
      refs: store.refs,
      dataDir: store.root,
      policy: createTrustPolicy(PolicyConfig.parse({ version: 1, peers: [{ peer: requester, roles: ['requester'] }] })),
      certs: [cert],
      platforms: ['linux/amd64'],
      builder,
      heartbeatMs: 250
    }
  })
  cleanups.push(async () => { await a.stop() })
  return { agent: a, store, builder, key }
}

async function requester (key: Ed25519PrivateKey, store: LocalStore): Promise<{ session: RequesterSession, node: KilnNode, warnings: string[] }> {
  const n = await node(key)
  const warnings: string[] = []
  const session = await startRequesterSession({
    node: n, key, store, log: (_level, message) => { warnings.push(message) },
    policy: createTrustPolicy(PolicyConfig.parse({ version: 1, roots: [{ key: id(rootA), roles: ['builder'] }] })),
    offerWindowMs: 1500,
    heartbeatMs: 250
  })
  cleanups.push(async () => { await session.stop() })
  return { session, node: n, warnings }
}

async function connect (from: KilnNode, ...to: KilnNode[]): Promise<void> {
  for (const t of to) await from.dial(t.getMultiaddrs()[0]!)
}

/** Waits (event-driven, bounded) until every agent's job topic subscription is known to the node. */
async function subscribed (n: KilnNode, count: number): Promise<void> {
  await expect.poll(() => n.services.pubsub.getSubscribers('kiln/jobs/v1/linux/amd64').length, { timeout: 20_000, interval: 50 }).toBeGreaterThanOrEqual(count)
}

function context (): string {
  const c = join(dir, 'ctx')
  mkdirSync(c, { recursive: true })
  writeFileSync(join(c, 'input.txt'), `hello ${Math.random()}\n`)
  writeFileSync(join(c, 'Dockerfile'), 'FROM scratch\nCOPY input.txt /\n')
  return c
}

const recipe = { kind: 'dockerfile' as const, file: 'Dockerfile', text: 'FROM scratch\nCOPY input.txt /\n' }

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
