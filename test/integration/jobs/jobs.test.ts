import { generateKeyPair } from '@libp2p/crypto/keys'
import { beforeAll, describe, expect, it } from 'vitest'
import { BaseUnavailableError, createJobAgent } from '../../../agent/jobs/index.ts'
import { LOG_TAIL_LINES } from '../../../agent/jobs/job-agent.ts'
import type { BaseSource, BuildOutput, BuildRequest, JobAgent, JobBuilder } from '../../../agent/jobs/index.ts'
import type { BasePin } from '../../../protocols/job.ts'
import { createRequester } from '../../../src/requester/index.ts'
import { createMemoryJobNetwork } from '../../../src/jobs/index.ts'
import type { JobEvent, Requester } from '../../../src/requester/index.ts'
import type { MemoryJobNetwork } from '../../../src/jobs/index.ts'
import { PolicyConfig, createTrustPolicy, issueCertificate } from '../../../src/trust/index.ts'
import type { Certificate, Ed25519PrivateKey } from '../../../src/trust/index.ts'
import { id, memoryBlobs, sha, stopsAfterEach } from './memory.ts'

const { blobs, put, image, fetch } = memoryBlobs()

/** Builds a fake image whose digest depends on recipe and platform (and a salt, to simulate a non-reproducible builder). */
function fakeBuilder (opts: { salt?: string, delayMs?: number } = {}): JobBuilder & { started: number, requests: BuildRequest[] } {
  const b = {
    started: 0,
    requests: [] as BuildRequest[],
    async build (req: Parameters<JobBuilder['build']>[0], o: Parameters<JobBuilder['build']>[1]): Promise<BuildOutput> {
      b.started++
      b.requests.push(req)
      o.onProgress(1, 2, 'RUN make')
      o.onLog(`building ${req.platform} from ${req.contextDir}`)
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, opts.delayMs ?? 5)
        o.signal.addEventListener('abort', () => { clearTimeout(t); reject(o.signal.reason as Error) }, { once: true })
      })
      return image(`layer of ${req.recipe.text} for ${req.platform}${opts.salt ?? ''}`, req.platform)
    }
  }
  return b
}

let root: Ed25519PrivateKey
let reqKey: Ed25519PrivateKey
const builderKeys: Ed25519PrivateKey[] = []
let net: MemoryJobNetwork
const stops = stopsAfterEach()

beforeAll(async () => {
  root = await generateKeyPair('Ed25519')
  reqKey = await generateKeyPair('Ed25519')
  for (let i = 0; i < 3; i++) builderKeys.push(await generateKeyPair('Ed25519'))
})

async function agent (key: Ed25519PrivateKey, opts: { platforms?: string[], certified?: boolean, builder?: JobBuilder, bases?: BaseSource, capabilities?: string[], othersRefused?: string } = {}): Promise<JobAgent> {
  const certs: Certificate[] = opts.certified === false ? [] : [await issueCertificate(root, { subject: id(key), roles: ['builder'], institution: 'uni-a' })]
  const a = createJobAgent({
    key,
    transport: net.connect(id(key)),
    // As loadTrustPolicy does, the node trusts itself in every role.
    policy: createTrustPolicy(PolicyConfig.parse({ version: 1, peers: [{ peer: id(reqKey), roles: ['requester'] }, { peer: id(key), roles: ['requester', 'builder'] }] })),
    ...(opts.othersRefused !== undefined ? { othersRefused: opts.othersRefused } : {}),
    builder: opts.builder ?? fakeBuilder(),
    context: { open: async (ctx) => { if (!blobs.has(ctx.digest)) throw new Error('no context'); return { dir: `/ctx/${ctx.digest.slice(7, 15)}`, release: async () => {} } } },
    ...(opts.bases !== undefined ? { bases: opts.bases } : {}),
    platforms: opts.platforms ?? ['linux/amd64'],
    capabilities: opts.capabilities ?? [],
    certs,
    heartbeatMs: 250
  })
  a.start()
  stops.push(async () => { await a.stop() })
  return a
}

function requester (key: Ed25519PrivateKey = reqKey): Requester {
  const r = createRequester({
    key,
    transport: net.connect(id(key)),
    policy: createTrustPolicy(PolicyConfig.parse({ version: 1, roots: [{ key: id(root), institution: 'uni-a', roles: ['builder'] }] })),
    blobs: { fetch },
    offerWindowMs: 200,
    heartbeatMs: 250
  })
  stops.push(() => { r.stop() })
  return r
}

const spec = (platforms = ['linux/amd64']): Parameters<Requester['submit']>[0] => ({
  recipe: { kind: 'dockerfile', file: 'Dockerfile', text: `FROM scratch\n# ${Math.random()}` },
  context: put(`context ${Math.random()}`),
  platforms
})

describe('signed jobs over an in-memory network', () => {
  it('awards trusted builders only, streams logs, verifies results and assembles an index', async () => {
    net = createMemoryJobNetwork()
    await agent(builderKeys[0] as Ed25519PrivateKey, { platforms: ['linux/amd64'] })
    await agent(builderKeys[1] as Ed25519PrivateKey, { platforms: ['linux/arm64'] })
    await agent(builderKeys[2] as Ed25519PrivateKey, { platforms: ['linux/amd64'], certified: false })
    const events: JobEvent[] = []
    const out = await requester().submit({ ...spec(['linux/amd64', 'linux/arm64']), onEvent: e => events.push(e) })
    expect(out.platforms.map(p => [p.platform, p.builders])).toEqual([['linux/amd64', [id(builderKeys[0] as Ed25519PrivateKey)]], ['linux/arm64', [id(builderKeys[1] as Ed25519PrivateKey)]]])
    expect(events.some(e => e.kind === 'refused' && e.builder === id(builderKeys[2] as Ed25519PrivateKey))).toBe(true)
    expect(events.some(e => e.kind === 'log' && e.lines[0]?.startsWith('building linux/arm64'))).toBe(true)
    expect(out.platforms[0]?.provenance).toMatchObject({ builder: id(builderKeys[0] as Ed25519PrivateKey), contextDigest: out.job.payload.context.digest, recipeDigest: out.job.payload.recipe.digest })
    const index = JSON.parse(new TextDecoder().decode(out.index?.bytes)) as { manifests: Array<{ digest: string, platform: { architecture: string } }> }
    expect(index.manifests.map(m => [m.platform.architecture, m.digest])).toEqual(out.platforms.map(p => [p.platform.split('/')[1], p.digest]))
    expect(out.index?.digest).toBe(sha(out.index?.bytes as Uint8Array))
  })

  it('keeps the newest lines of each job\'s log for the status page, bounded, after the job ends too', async () => {
    net = createMemoryJobNetwork()
    const base = fakeBuilder()
    const chatty: JobBuilder = {
      build: async (req, o) => {
        for (let i = 1; i <= LOG_TAIL_LINES + 30; i++) o.onLog(`line ${i} of ${req.platform}`)
        return await base.build(req, o)
      }
    }
    const a = await agent(builderKeys[0] as Ed25519PrivateKey, { builder: chatty })
    const out = await requester().submit(spec())
    const tail = a.logTail(out.jobId, 'linux/amd64')
    expect(tail).toHaveLength(LOG_TAIL_LINES)
    expect(tail[0]).toBe('line 32 of linux/amd64')
    expect(tail.at(-1)).toMatch(/^building linux\/amd64 from /)
    expect(a.status()).toContainEqual(expect.objectContaining({ jobId: out.jobId, state: 'succeeded' }))
    expect(a.logTail(out.jobId, 'linux/arm64')).toEqual([])
  })

  it('--verify 2 fails loudly when two builders disagree, and passes when they agree', async () => {
    net = createMemoryJobNetwork()
    await agent(builderKeys[0] as Ed25519PrivateKey)
    await agent(builderKeys[1] as Ed25519PrivateKey, { builder: fakeBuilder({ salt: 'nondeterministic' }) })
    await expect(requester().submit({ ...spec(), verify: 2 })).rejects.toMatchObject({ name: 'ReproducibilityError' })
    net = createMemoryJobNetwork()
    stops.splice(0).forEach(s => { void s() })
    await agent(builderKeys[0] as Ed25519PrivateKey)
    await agent(builderKeys[1] as Ed25519PrivateKey)
    const ok = await requester().submit({ ...spec(), verify: 2 })
    expect(ok.platforms[0]?.builders).toHaveLength(2)
  })

  it('re-awards when a builder goes silent', async () => {
    net = createMemoryJobNetwork()
    await agent(builderKeys[0] as Ed25519PrivateKey, { builder: fakeBuilder({ delayMs: 600 }) })
    await agent(builderKeys[1] as Ed25519PrivateKey, { builder: fakeBuilder({ delayMs: 600 }) })
    const events: JobEvent[] = []
    let victim: string | undefined
    const out = await requester().submit({
      ...spec(),
      onEvent: e => {
        events.push(e)
        // The first builder dies once it has started: no more heartbeats, no result.
        if (victim === undefined && e.kind === 'progress' && e.state === 'building') { victim = e.builder; net.disconnect(e.builder) }
      }
    })
    expect(victim).toBeDefined()
    expect(events).toContainEqual({ kind: 'lost', platform: 'linux/amd64', builder: victim })
    expect(out.platforms[0]?.builders).toHaveLength(1)
    expect(out.platforms[0]?.builders[0]).not.toBe(victim)
  })

  it('cancel stops the build and fails the submit', async () => {
    net = createMemoryJobNetwork()
    const a = await agent(builderKeys[0] as Ed25519PrivateKey, { builder: fakeBuilder({ delayMs: 10_000 }) })
    const r = requester()
    const ac = new AbortController()
    const done = r.submit({ ...spec(), onEvent: e => { if (e.kind === 'progress' && e.state === 'building') ac.abort() }, signal: ac.signal })
    await expect(done).rejects.toMatchObject({ name: 'JobCancelledError' })
    await expect.poll(() => a.status().map(s => s.state)).toEqual(['cancelled'])
  })

  it('an agent whose sandbox cannot isolate steps declines the jobs of other peers with the reason, and builds its own node\'s', async () => {
    net = createMemoryJobNetwork()
    const reason = 'the proot sandbox cannot isolate build steps from kiln'
    const builder = fakeBuilder()
    const key = builderKeys[0] as Ed25519PrivateKey
    const a = await agent(key, { othersRefused: reason, builder })
    const events: JobEvent[] = []
    await expect(requester().submit({ ...spec(), to: [a.peerId], onEvent: e => events.push(e) })).rejects.toMatchObject({ name: 'NoOffersError' })
    expect(events).toContainEqual(expect.objectContaining({ kind: 'decline', builder: a.peerId, reason }))
    expect(events.some(e => e.kind === 'offer')).toBe(false)
    expect(builder.started).toBe(0)
    // The operator's own jobs (signed with the node's key, as kiln submit on its data dir does) are built.
    const own = await requester(key).submit({ ...spec(), to: [a.peerId] })
    expect(own.platforms[0]?.builders).toEqual([a.peerId])
    expect(builder.started).toBe(1)
  })

  it('a direct job the agent cannot meet is declined with a reason', async () => {
    net = createMemoryJobNetwork()
    const a = await agent(builderKeys[0] as Ed25519PrivateKey, { capabilities: ['gpu', 'cuda=11.8'] })
    const events: JobEvent[] = []
    await expect(requester().submit({ ...spec(), requirements: ['cuda>=12'], to: [a.peerId], onEvent: e => events.push(e) })).rejects.toMatchObject({ name: 'NoOffersError' })
    expect(events).toContainEqual(expect.objectContaining({ kind: 'decline', reason: 'lacks cuda>=12' }))
  })

  it('brings the pinned bases of the awarded platform in before building, holds them through the build, and fails the platform naming a base nobody provides', async () => {
    net = createMemoryJobNetwork()
    const pin = (platform: string, ref: string): BasePin => ({ ref, platform, digest: sha(`${ref} ${platform}`), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 400 })
    const bases = [pin('linux/amd64', 'site/base:1'), pin('linux/arm64', 'site/base:1'), pin('linux/amd64', 'docker://quay.io/tools:2')]
    const calls: Array<{ bases: BasePin[], requester: string, released: boolean }> = []
    const source: BaseSource = {
      open: async (pins, requester) => {
        const call = { bases: pins, requester, released: false }
        calls.push(call)
        if (pins.some(p => p.ref.startsWith('gone/'))) throw new BaseUnavailableError(pins[0] as BasePin, 'no peer provides it')
        return { release: () => { call.released = true } }
      }
    }
    const builder = fakeBuilder()
    const amd = await agent(builderKeys[0] as Ed25519PrivateKey, { builder, bases: source })
    const out = await requester().submit({ ...spec(), bases, to: [amd.peerId] })
    expect(out.job.payload.bases).toEqual(bases)
    const mine = bases.filter(b => b.platform === 'linux/amd64')
    expect(calls).toEqual([{ bases: mine, requester: id(reqKey), released: true }])
    expect(builder.requests[0]?.bases).toEqual(mine)

    const gone = pin('linux/amd64', 'gone/base:1')
    await expect(requester().submit({ ...spec(), bases: [gone], to: [amd.peerId] }))
      .rejects.toMatchObject({ name: 'BuildError', message: expect.stringContaining(`base gone/base:1 pinned to ${gone.digest} (linux/amd64): no peer provides it`) })
    expect(builder.started).toBe(1)
  })

  it('tells the builder whose job it builds, so that each requester\'s RUN cache mounts are its own', async () => {
    net = createMemoryJobNetwork()
    const builder = fakeBuilder()
    await agent(builderKeys[0] as Ed25519PrivateKey, { builder })
    await requester().submit(spec())
    expect(builder.requests.map(r => r.requester)).toEqual([id(reqKey)])
  })

  it('leaves bases out of a job that pins none, so that builders older than the field take it', async () => {
    net = createMemoryJobNetwork()
    const a = await agent(builderKeys[0] as Ed25519PrivateKey)
    const out = await requester().submit({ ...spec(), bases: [], to: [a.peerId] })
    expect(Object.hasOwn(out.job.payload, 'bases')).toBe(false)
  })
})
