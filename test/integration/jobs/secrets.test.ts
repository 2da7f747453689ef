import { generateKeyPair } from '@libp2p/crypto/keys'
import { beforeAll, describe, expect, it } from 'vitest'
import { createJobAgent } from '../../../agent/jobs/index.ts'
import type { BuildOutput, BuildRequest, JobAgent, JobBuilder } from '../../../agent/jobs/index.ts'
import { jobTopic } from '../../../protocols/job.ts'
import type { JobPayload, ResultPayload } from '../../../protocols/job.ts'
import { createRequester } from '../../../src/requester/index.ts'
import type { Requester } from '../../../src/requester/index.ts'
import { createMemoryJobNetwork, openFrame, seal, sealSecrets } from '../../../src/jobs/index.ts'
import type { JobTransport, MemoryJobNetwork } from '../../../src/jobs/index.ts'
import { PolicyConfig, createTrustPolicy, issueCertificate } from '../../../src/trust/index.ts'
import type { Ed25519PrivateKey } from '../../../src/trust/index.ts'
import { id, memoryBlobs, sha, stopsAfterEach } from './memory.ts'

const enc = new TextEncoder()
const dec = new TextDecoder()
const { put, image, fetch } = memoryBlobs()

const SECRET = 'tok-5f1e9a7c-never-on-the-wire'
const RECIPE = 'FROM scratch\nRUN --mount=type=secret,id=token,required cat /run/secrets/token\n'

/** Records what each build was given: a copy of the secrets while it ran, and the arrays themselves to look at afterwards. */
function recordingBuilder (): JobBuilder & { seen: Array<Record<string, string>>, given: Array<BuildRequest['secrets']> } {
  const b = {
    seen: [] as Array<Record<string, string>>,
    given: [] as Array<BuildRequest['secrets']>,
    async build (req: BuildRequest, o: Parameters<JobBuilder['build']>[1]): Promise<BuildOutput> {
      b.given.push(req.secrets)
      b.seen.push(Object.fromEntries(Object.entries(req.secrets ?? {}).map(([k, v]) => [k, dec.decode(v)])))
      o.onLog(`building with secrets ${Object.keys(req.secrets ?? {}).join(',')}`)
      return image(`layer ${req.platform} ${Math.random()}`, req.platform)
    }
  }
  return b
}

let root: Ed25519PrivateKey
let reqKey: Ed25519PrivateKey
let keyA: Ed25519PrivateKey
let keyB: Ed25519PrivateKey
let net: MemoryJobNetwork
const stops = stopsAfterEach()

beforeAll(async () => {
  root = await generateKeyPair('Ed25519')
  reqKey = await generateKeyPair('Ed25519')
  keyA = await generateKeyPair('Ed25519')
  keyB = await generateKeyPair('Ed25519')
})

async function agent (key: Ed25519PrivateKey, builder: JobBuilder, log: string[] = []): Promise<JobAgent> {
  const a = createJobAgent({
    key,
    transport: net.connect(id(key)),
    policy: createTrustPolicy(PolicyConfig.parse({ version: 1, peers: [{ peer: id(reqKey), roles: ['requester'] }] })),
    builder,
    context: { open: async () => ({ dir: '/ctx', release: async () => {} }) },
    platforms: ['linux/amd64'],
    certs: [await issueCertificate(root, { subject: id(key), roles: ['builder'], institution: 'uni-a' })],
    heartbeatMs: 250,
    log: (_level, message) => { log.push(message) }
  })
  a.start()
  stops.push(async () => { await a.stop() })
  return a
}

/** The requester's transport, with every frame it publishes or sends recorded. */
function tapped (t: JobTransport, frames: Array<{ to: string, frame: Uint8Array }>): JobTransport {
  return {
    ...t,
    publish: async (topic, frame) => { frames.push({ to: topic, frame }); return await t.publish(topic, frame) },
    send: async (peer, fs) => { for (const frame of fs) frames.push({ to: peer, frame }); await t.send(peer, fs) }
  }
}

function requester (frames: Array<{ to: string, frame: Uint8Array }> = []): Requester {
  const r = createRequester({
    key: reqKey,
    transport: tapped(net.connect(id(reqKey)), frames),
    policy: createTrustPolicy(PolicyConfig.parse({ version: 1, roots: [{ key: id(root), institution: 'uni-a', roles: ['builder'] }] })),
    blobs: { fetch },
    offerWindowMs: 300,
    heartbeatMs: 250
  })
  stops.push(() => { r.stop() })
  return r
}

/** Waits for the first result frame the requester's key receives (a requester that is only listening). */
async function nextResult (t: JobTransport): Promise<ResultPayload> {
  return await new Promise(resolve => {
    const off = t.onFrame((bytes) => {
      void openFrame(bytes).then(m => { if (m.type === 'result') { off(); resolve(m.envelope.payload) } }, () => {})
    })
  })
}

describe('job secrets over an in-memory network (protocols/job.md §6)', () => {
  it('reach the awarded agent\'s builder only, sealed in its award; the published job names the ids and carries no value', async () => {
    net = createMemoryJobNetwork()
    // An eavesdropper on the platform's topic: every agent of the platform sees what it sees.
    const heard: Uint8Array[] = []
    const spy = net.connect('spy')
    spy.subscribe(jobTopic('linux/amd64'))
    spy.onFrame(frame => { heard.push(frame) })
    const builder = recordingBuilder()
    const agentLog: string[] = []
    await agent(keyA, builder, agentLog)
    const frames: Array<{ to: string, frame: Uint8Array }> = []
    const out = await requester(frames).submit({
      recipe: { kind: 'dockerfile', file: 'Dockerfile', text: RECIPE },
      context: put(`ctx ${Math.random()}`),
      platforms: ['linux/amd64'],
      secrets: { token: enc.encode(SECRET) }
    })
    expect(out.platforms[0]?.builders).toEqual([id(keyA)])
    expect(builder.seen).toEqual([{ token: SECRET }])
    // Wiped once the run ended: the agent keeps the values no longer than the build.
    expect([...(builder.given[0]?.token ?? [1])].every(b => b === 0)).toBe(true)

    expect((out.job.payload as JobPayload).secrets).toEqual(['token'])
    expect(heard.length).toBeGreaterThan(0)
    const everything = [...heard, ...frames.map(f => f.frame)].map(f => Buffer.from(f).toString('latin1')).join('\n')
    expect(everything).not.toContain(SECRET)
    expect(everything).not.toContain(Buffer.from(SECRET).toString('base64url').slice(0, 16))
    expect(everything).not.toContain(Buffer.from(SECRET).toString('base64').slice(0, 16))
    expect(agentLog.join('\n')).not.toContain(SECRET)

    const awards = await Promise.all(frames.filter(f => f.to === id(keyA)).map(async f => await openFrame(f.frame)).map(async p => await p.catch(() => undefined)))
    const sealed = awards.flatMap(m => m?.type === 'award' ? [m.envelope.payload.secrets] : [])
    expect(sealed).toHaveLength(1)
    expect(sealed[0]).toMatchObject({ alg: 'x25519-hkdf-sha256-aes-256-gcm' })
    for (const f of heard) {
      const m = await openFrame(f).catch(() => undefined)
      expect(m?.type).toBe('job')
    }
  }, 30_000)

  it('an award sealed to another agent fails the platform with a clear error, and nothing is built', async () => {
    net = createMemoryJobNetwork()
    const builder = recordingBuilder()
    await agent(keyA, builder)
    const t = net.connect(id(reqKey))
    const got = nextResult(t)
    const payload: JobPayload = {
      jobId: 'secret-job-1', recipe: { kind: 'dockerfile', file: 'Dockerfile', text: RECIPE, digest: sha(RECIPE) },
      context: put('ctx 1'), platforms: ['linux/amd64'], requirements: [], buildArgs: {}, network: false, secrets: ['token']
    }
    const { envelope } = await seal(reqKey, 'job', payload)
    const secrets = sealSecrets({ token: enc.encode(SECRET) }, { jobId: payload.jobId, platform: 'linux/amd64', builder: id(keyB), requester: id(reqKey) })
    const { frame } = await seal(reqKey, 'award', { jobId: payload.jobId, platform: 'linux/amd64', builder: id(keyA), job: envelope, secrets })
    await t.send(id(keyA), [frame])
    const result = await got
    expect(result).toMatchObject({ status: 'failed', platform: 'linux/amd64' })
    expect(result.status === 'failed' && result.error).toMatch(/cannot use the job's secrets: .*do not open with this agent's key/)
    // Not a hand-back: the platform fails rather than going to the next agent with the same problem.
    expect(result.status === 'failed' && result.provenance?.startedAt).toBeTypeOf('number')
    expect(builder.seen).toHaveLength(0)
  }, 30_000)

  it('an award without the secrets its job lists (a resumed requester) fails clearly, and so does one for another platform', async () => {
    net = createMemoryJobNetwork()
    const builder = recordingBuilder()
    await agent(keyA, builder)
    const t = net.connect(id(reqKey))
    const payload: JobPayload = {
      jobId: 'secret-job-2', recipe: { kind: 'dockerfile', file: 'Dockerfile', text: RECIPE, digest: sha(RECIPE) },
      context: put('ctx 2'), platforms: ['linux/amd64', 'linux/arm64'], requirements: [], buildArgs: {}, network: false, secrets: ['token']
    }
    const { envelope } = await seal(reqKey, 'job', payload)
    let got = nextResult(t)
    await t.send(id(keyA), [(await seal(reqKey, 'award', { jobId: payload.jobId, platform: 'linux/amd64', builder: id(keyA), job: envelope })).frame])
    let result = await got
    expect(result.status === 'failed' && result.error).toMatch(/needs the secrets token and its award carries none.*kiln jobs resume --secret/)

    // Sealed for the job's other platform, then put in this platform's award: the associated data differs.
    got = nextResult(t)
    const secrets = sealSecrets({ token: enc.encode(SECRET) }, { jobId: payload.jobId, platform: 'linux/arm64', builder: id(keyA), requester: id(reqKey) })
    await t.send(id(keyA), [(await seal(reqKey, 'award', { jobId: payload.jobId, platform: 'linux/amd64', builder: id(keyA), job: envelope, secrets })).frame])
    result = await got
    expect(result.status === 'failed' && result.error).toMatch(/do not open/)
    expect(builder.seen).toHaveLength(0)
  }, 30_000)

  it('a resumed job builds again only with its secrets given again; without them the platform fails saying so', async () => {
    net = createMemoryJobNetwork()
    const builder = recordingBuilder()
    await agent(keyA, builder)
    const payload = (jobId: string): JobPayload => ({
      jobId, recipe: { kind: 'dockerfile', file: 'Dockerfile', text: RECIPE, digest: sha(RECIPE) },
      context: put(`ctx ${jobId}`), platforms: ['linux/amd64'], requirements: [], buildArgs: {}, network: false, secrets: ['token']
    })
    // As the journal gives it back: the signed job (ids only) and the builder it was awarded to.
    const resumeSpec = async (jobId: string): Promise<Parameters<Requester['resume']>[0]> => ({
      job: (await seal(reqKey, 'job', payload(jobId), { ttlMs: 3600_000 })).envelope, verify: 1, platforms: [{ platform: 'linux/amd64', builders: [id(keyA)] }]
    })
    const r = requester()
    await expect(r.resume(await resumeSpec('resumed-bare'))).rejects.toThrow(/cannot use the job's secrets: the job needs the secrets token and its award carries none/)
    expect(builder.seen).toHaveLength(0)
    await expect(r.resume({ ...(await resumeSpec('resumed-stray')), secrets: { other: enc.encode('x') } })).rejects.toThrow(/lists no secret other/)

    const out = await r.resume({ ...(await resumeSpec('resumed-given')), secrets: { token: enc.encode(SECRET) } })
    expect(out.platforms[0]?.builders).toEqual([id(keyA)])
    expect(builder.seen).toEqual([{ token: SECRET }])
  }, 30_000)
})
