/**
 * Farm benchmark (issue 17, item 9): 20 agents in KILN_BENCH_HOSTS child
 * processes (test/bench/_farm-host.ts, default 4, 5 agents each), 4
 * requesters in this process, 40 jobs over mixed platforms and
 * capabilities, all on loopback.
 *
 * Agents: full agents (`startAgent`: libp2p node on its own 127.0.x.y
 * address, store, journal, signed capability record on the DHT, job agent,
 * base source) with an instant builder, so that what is measured is the job
 * protocol and the travel of bases, not a build. Half build linux/amd64,
 * half linux/arm64; 4 advertise `gpu`, 4 `mpi` (2 of each per platform).
 * Each dials 3 others across processes (2 of its platform, 1 of the other);
 * each requester dials 2 agents only (one per platform), so a job reaches
 * the rest through the gossip mesh and DHT lookups.
 *
 * Bases: one image per platform lives in a local docker-registry (the
 * upstream), and every recipe starts `FROM <upstream>/lib/base-ARCH@sha256:…`.
 * Requester 0 pins both first (the site's one pull from upstream) and
 * announces their blobs; every other pin comes from the network (any
 * provider), and every agent fetches
 * a job's base from the requester peer to peer. The registry's access log
 * counts the upstream fetches of each base blob (goal: 1).
 *
 * Each job is run as `kiln submit` runs it: the lookup of the platform's
 * agents (Requester.discover) starts while the base is pinned and the
 * context shared, and the clock starts at the submit.
 *
 * Figures: submit -> award (from the requester's events) p50/p95/max over
 * the 40 jobs, 10 per requester, the 4 requesters at once (goal p95 <
 * 500 ms); the reference, measured in the same run, is the same latency with
 * one agent (each job sent `--to` one matching agent, 10 jobs); where that
 * time goes (each requester's job transport traced: publish called and
 * returned, agents found by the DHT search, direct sends ended, answers);
 * jobs completed, and by an agent that has what the job requires; load
 * average.
 *
 *   npm run bench -- farm     (KILN_BENCH_HOSTS, KILN_BENCH_JOBS)
 */
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { gzipSync } from 'node:zlib'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { openLocalStore, sha256Digest } from '../../src/content/index.ts'
import type { Digest, LocalStore } from '../../src/content/index.ts'
import { createKilnNode } from '../../src/p2p/index.ts'
import { createLibp2pJobTransport } from '../../src/jobs/index.ts'
import type { JobTransport } from '../../src/jobs/index.ts'
import { createTransfer } from '../../src/transfer/index.ts'
import type { KilnNode } from '../../src/p2p/index.ts'
import { parseRecipe } from '../../src/recipe/index.ts'
import { startRequesterSession } from '../../src/requester/index.ts'
import type { RequesterSession } from '../../src/requester/index.ts'
import { PolicyConfig, createTrustPolicy } from '../../src/trust/index.ts'
import { freePort } from '../helpers/http-service.ts'
import { haveTools } from '../helpers/tools.ts'
import type { FarmAgentSpec, FarmDialArgs, FarmHostOp, FarmStartArgs, FarmStatsArgs } from './_farm-host.ts'
import { BenchHost } from './_host-rpc.ts'

const HOSTS = Number(process.env.KILN_BENCH_HOSTS ?? 4)
const AGENTS = 20
const REQUESTERS = 4
const JOBS = Number(process.env.KILN_BENCH_JOBS ?? 40)
const REFERENCE_JOBS = 10
const PLATFORMS = ['linux/amd64', 'linux/arm64']
/** The requirements the jobs cycle through. */
const REQUIREMENTS: string[][] = [[], ['gpu'], [], ['mpi']]

const pct = (xs: number[], p: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(p / 100 * s.length) - 1)] as number }
const say = (what: string): void => { process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${what}\n`) }
const load = (): string => loadavg().map(x => x.toFixed(2)).join(' ')

/** One child process hosting agents (./_host-rpc.ts), with the ops' argument types. */
class Host extends BenchHost<FarmHostOp> {
  constructor (index: number) {
    super(join(import.meta.dirname, '_farm-host.ts'), index)
  }

  override async call<R>(op: 'start', args: FarmStartArgs, ms: number): Promise<R>
  override async call<R>(op: 'dial', args: FarmDialArgs, ms: number): Promise<R>
  override async call<R>(op: 'stats', args: FarmStatsArgs, ms: number): Promise<R>
  override async call<R>(op: 'stop', args: undefined, ms: number): Promise<R>
  override async call<R> (op: FarmHostOp, args: unknown, ms: number): Promise<R> {
    return await super.call<R>(op, args, ms)
  }
}

/** docker-registry on a loopback port over a temp dir, its access log (combined format) collected. */
async function startUpstream (dir: string): Promise<{ hostPort: string, requests: () => string[], stop: () => Promise<void> }> {
  const port = await freePort()
  writeFileSync(join(dir, 'config.yml'), `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\nhttp:\n  addr: 127.0.0.1:${port}\n`)
  const child = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  let partial = ''
  const collect = (d: Buffer): void => {
    const text = partial + d.toString()
    const parts = text.split('\n')
    partial = parts.pop() ?? ''
    for (const l of parts) { const m = /"(GET|HEAD|PUT|POST|PATCH) (\/v2\/\S*) HTTP\/[\d.]+" (\d+)/.exec(l); if (m !== null) lines.push(`${m[1] as string} ${m[2] as string} ${m[3] as string}`) }
  }
  child.stdout.on('data', collect)
  child.stderr.on('data', collect)
  const deadline = Date.now() + 15_000
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/v2/`).then(r => r.ok, () => false)
    if (ok) break
    if (Date.now() > deadline || child.exitCode !== null) { child.kill('SIGKILL'); throw new Error('docker-registry did not start') }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return {
    hostPort: `127.0.0.1:${port}`,
    requests: () => [...lines],
    stop: async () => { if (child.exitCode === null) { child.kill('SIGTERM'); await new Promise(resolve => child.once('exit', resolve)) } }
  }
}

/** Pushes a one-layer image for `arch` to the upstream; returns its manifest digest and blob digests. */
async function pushBase (hostPort: string, arch: string): Promise<{ repo: string, digest: string, blobs: string[] }> {
  const repo = `lib/base-${arch}`
  const raw = Buffer.from(`the ${arch} base layer\n`.repeat(4096))
  const layer = gzipSync(raw)
  const config = Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256Digest(raw)] } }))
  for (const blob of [layer, config]) {
    const start = await fetch(`http://${hostPort}/v2/${repo}/blobs/uploads/`, { method: 'POST' })
    await start.arrayBuffer()
    const location = new URL(start.headers.get('location') ?? '', `http://${hostPort}`)
    location.searchParams.set('digest', sha256Digest(blob))
    const r = await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: blob })
    if (r.status !== 201) throw new Error(`pushing a blob to the upstream: ${r.status} ${await r.text()}`)
  }
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256Digest(config), size: config.byteLength },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256Digest(layer), size: layer.byteLength }]
  }))
  const r = await fetch(`http://${hostPort}/v2/${repo}/manifests/1`, { method: 'PUT', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest })
  if (r.status !== 201) throw new Error(`pushing the manifest to the upstream: ${r.status} ${await r.text()}`)
  return { repo, digest: sha256Digest(manifest), blobs: [sha256Digest(manifest), sha256Digest(config), sha256Digest(layer)] }
}

interface Requester { key: PrivateKey, node: KilnNode, store: LocalStore, session?: RequesterSession, trace: Trace, stop?: () => Promise<void> }
interface JobRecord { requester: number, platform: string, requires: string[], pinMs: number, awardMs: number, doneMs: number, offers: number, builder: string, phases?: Phases, error?: string }

/**
 * What the requester's job transport did during one job, in ms from the
 * submit: when publish was called and returned (the wait for subscribers,
 * then the gossip hand-over), which peers it handed the job to, when the
 * DHT search found each agent, when each direct send of the job ended.
 * The requester runs one job at a time, so one trace per requester.
 */
interface Trace {
  t0: number
  publish?: { start: number, end: number, recipients: string[] }
  found: Map<string, number>
  sent: Map<string, number>
}
const newTrace = (): Trace => ({ t0: performance.now(), found: new Map(), sent: new Map() })

/** A job transport that records into `trace()` what the requester asked of it. */
function tracing (inner: JobTransport, trace: () => Trace): JobTransport {
  const at = (): number => performance.now() - trace().t0
  return {
    ...inner,
    publish: async (topic, frame) => {
      const start = at()
      const out = await inner.publish(topic, frame)
      trace().publish = { start, end: at(), recipients: out.recipients }
      return out
    },
    ...(inner.findAgents !== undefined
      ? {
          findAgents: async (search) => {
            await inner.findAgents!({ ...search, onAgent: a => { const tr = trace(); if (!tr.found.has(a.peer)) tr.found.set(a.peer, at()); search.onAgent(a) } })
          }
        }
      : {}),
    send: async (peer, frames) => {
      const tr = trace()
      await inner.send(peer, frames)
      if (!tr.sent.has(peer)) tr.sent.set(peer, performance.now() - tr.t0)
    }
  }
}

/** Where one job's time to its award went (ms from the submit; undefined when it did not happen). */
interface Phases {
  /** publish called: the job signed. */
  signed: number
  /** publish returned: the wait for the topic's subscribers, then the gossip hand-over. */
  published: number
  /** The first and the last offer of a peer the gossip handed the job to. */
  gossipOffer?: number
  /** The first agent the DHT search found, and the last found before the award. */
  firstFound?: number
  lastFound?: number
  /** The last direct send of the job that ended before the award. */
  lastSent?: number
  /** The last answer before the award, and whose: the gossip's recipient or a peer sent the job. */
  lastAnswer: number
  lastAnswerBy: 'gossip' | 'sent' | 'none'
  award: number
}

async function main (): Promise<void> {
  if (!haveTools('docker-registry')) { console.log('farm: skipped, docker-registry is not installed (apt-get install docker-registry)'); return }
  const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-farm-'))
  const hosts: Host[] = []
  const requesters: Requester[] = []
  let upstream: Awaited<ReturnType<typeof startUpstream>> | undefined
  console.log(`load average at start: ${load()}`)
  const t0 = performance.now()
  try {
    mkdirSync(join(dir, 'upstream'))
    upstream = await startUpstream(join(dir, 'upstream'))
    const bases = Object.fromEntries(await Promise.all(PLATFORMS.map(async p => [p, await pushBase(upstream!.hostPort, p.split('/')[1] as string)] as const)))
    const setupRequests = upstream.requests().length

    for (let r = 0; r < REQUESTERS; r++) {
      const key = await generateKeyPair('Ed25519')
      const node = await createKilnNode({ privateKey: key, listen: [`/ip4/127.0.50.${2 + r}/tcp/0`], mdns: false })
      requesters.push({ key, node, store: await openLocalStore(join(dir, `requester-${r}`)), trace: newTrace() })
    }
    const requesterIds = requesters.map(r => peerIdFromPrivateKey(r.key).toString())

    // Agent g: platform alternating; gpu on g % 5 == 0, mpi on g % 5 == 1 (two of each per platform).
    const specs: FarmAgentSpec[] = Array.from({ length: AGENTS }, (_, g) => ({
      platform: PLATFORMS[g % 2] as string,
      capabilities: g % 5 === 0 ? ['gpu'] : g % 5 === 1 ? ['mpi'] : [],
      listen: `/ip4/127.0.${10 + Math.floor(g / 250)}.${2 + g % 250}/tcp/0`
    }))
    const perHost = Math.ceil(AGENTS / HOSTS)
    for (let h = 0; h < HOSTS; h++) hosts.push(new Host(h))
    const started = await Promise.all(hosts.map(async (host, h) => await host.call<{ agents: Array<{ peerId: string, addr: string }> }>('start', {
      dir, agents: specs.slice(h * perHost, (h + 1) * perHost), requesters: requesterIds
    }, 120_000)))
    const agents = started.flatMap((s, h) => s.agents.map((a, i) => ({ ...a, host: h, local: i, spec: specs[h * perHost + i] as FarmAgentSpec })))
    const byPeer = new Map(agents.map(a => [a.peerId, a]))
    // Each agent dials 3 others, across processes: two of its platform (its gossip mesh for the platform's topic) and one of the other.
    const dials = await Promise.all(hosts.map(async (host, h) => await host.call<{ failed: number }>('dial', {
      dials: agents.filter(a => a.host === h).flatMap(a => {
        const g = h * perHost + a.local
        return [2, 5, 8].map(d => [a.local, (agents[(g + d) % AGENTS] as { addr: string }).addr] as [number, string])
      })
    }, 120_000)))
    say('agents started and dialled')
    const failedDials = dials.reduce((n, d) => n + d.failed, 0)
    // Each requester dials 2 agents only, one of each platform, in two processes.
    for (const [r, req] of requesters.entries()) {
      for (const g of [r * 5 % AGENTS, (r * 5 + 7) % AGENTS]) {
        // Under load a handshake may time out: try again (bounded).
        for (let attempt = 1; ; attempt++) {
          try { await req.node.dial(multiaddr((agents[g] as { addr: string }).addr), { signal: AbortSignal.timeout(30_000) }); break } catch (err) { if (attempt === 3) throw err }
        }
      }
    }
    const policy = createTrustPolicy(PolicyConfig.parse({ version: 1, peers: agents.map(a => ({ peer: a.peerId, roles: ['builder'] })) }))
    for (const req of requesters) {
      // The session's own transfer and job transport, but the transport traced (what the session makes when not given them).
      const transfer = createTransfer({ node: req.node, store: req.store.content })
      await transfer.start()
      const transport = createLibp2pJobTransport({ node: req.node })
      await transport.start()
      req.stop = async () => { await transport.stop(); await transfer.stop() }
      req.session = await startRequesterSession({ node: req.node, key: req.key, store: req.store, policy, shared: { transfer, transport: tracing(transport, () => req.trace) } })
    }
    // Ready when each requester sees subscribers of both platforms' topics (its gossip mesh knows where to send).
    const readyBy = Date.now() + 60_000
    while (Date.now() < readyBy && !requesters.every(q => PLATFORMS.every(p => q.node.services.pubsub.getSubscribers(`kiln/jobs/v1/${p}`).length > 0))) await new Promise(resolve => setTimeout(resolve, 100))
    console.log(`${AGENTS} agents in ${HOSTS} processes, ${REQUESTERS} requesters: up in ${((performance.now() - t0) / 1000).toFixed(1)} s (${failedDials} agent dials failed)`)

    const ctxDir = join(dir, 'ctx')
    mkdirSync(ctxDir)
    writeFileSync(join(ctxDir, 'f'), 'context\n')
    const recipe = (platform: string, n: number): string => `FROM ${upstream!.hostPort}/${bases[platform]!.repo}@${bases[platform]!.digest}\nCOPY f /f\n# job ${n}\n`
    const pin = async (session: RequesterSession, platform: string, text: string): Promise<Awaited<ReturnType<RequesterSession['pinBases']>>> =>
      await session.pinBases([{ platform, plan: parseRecipe(text, { filename: 'Dockerfile', platform }) }])
    say('requesters ready')
    // The site's one pull from upstream: requester 0 pins both bases and announces their blobs (awaited here, so the others find a provider).
    for (const p of PLATFORMS) await pin(requesters[0]!.session!, p, recipe(p, -1))
    const announced = await Promise.allSettled(PLATFORMS.flatMap(p => bases[p]!.blobs).map(async b => { await requesters[0]!.session!.transfer.provide(b as Digest, { signal: AbortSignal.timeout(60_000) }) }))
    say(`bases pinned by requester 0, ${announced.filter(a => a.status === 'fulfilled').length} of ${announced.length} blobs announced`)

    const runJob = async (r: number, n: number, platform: string, requires: string[], to?: string): Promise<JobRecord> => {
      const session = requesters[r]!.session!
      const text = recipe(platform, n)
      // As kiln submit does: the agents are looked up while the base is pinned and the context shared.
      const discovering = new AbortController()
      const discovered = to === undefined ? session.requester.discover({ platforms: [platform], requirements: requires, signal: discovering.signal }) : Promise.resolve(0)
      const pinStart = performance.now()
      // A base no peer provides in time (a loaded machine) fails that job, not the bench.
      const bases = await pin(session, platform, text).catch((err: Error) => err)
      const pinMs = performance.now() - pinStart
      const unpinned = bases instanceof Error ? bases.message : bases.pins.length !== 1 ? `base not pinned: ${JSON.stringify(bases.unpinned)}` : undefined
      if (unpinned !== undefined || bases instanceof Error) {
        discovering.abort()
        await discovered
        return { requester: r, platform, requires, pinMs, awardMs: 0, doneMs: 0, offers: 0, builder: '', error: `pinning: ${unpinned ?? ''}` }
      }
      const context = await session.shareContext(ctxDir)
      const trace = requesters[r]!.trace = newTrace()
      const start = trace.t0
      let awardMs = 0
      let offers = 0
      const answers: Array<{ at: number, peer: string }> = []
      const result = await session.requester.submit({
        recipe: { kind: 'dockerfile', file: 'Dockerfile', text }, context, platforms: [platform], bases: bases.pins,
        ...(requires.length > 0 ? { requirements: requires } : {}),
        ...(to !== undefined ? { to: [to] } : {}),
        signal: AbortSignal.timeout(120_000),
        onEvent: e => {
          if (e.kind === 'offer') offers++
          if ((e.kind === 'offer' || e.kind === 'decline' || e.kind === 'refused') && awardMs === 0) answers.push({ at: performance.now() - start, peer: e.builder })
          if (e.kind === 'award' && awardMs === 0) awardMs = performance.now() - start
        }
      }).catch((err: Error) => err)
      discovering.abort()
      await discovered
      const phases = awardMs > 0 ? phasesOf(trace, answers, awardMs) : undefined
      if (result instanceof Error) return { requester: r, platform, requires, pinMs, awardMs, doneMs: performance.now() - start, offers, builder: '', error: result.message }
      return { requester: r, platform, requires, pinMs, awardMs, doneMs: performance.now() - start, offers, builder: result.platforms[0]?.builders[0] ?? '', ...(phases !== undefined ? { phases } : {}) }
    }

    // Reference: one agent per job (sent straight to one that matches), from requester 0, one at a time; the first warms up.
    const reference: JobRecord[] = []
    for (let j = 0; j < REFERENCE_JOBS + 1; j++) {
      const platform = PLATFORMS[j % 2] as string
      const target = agents.find(a => a.spec.platform === platform) as { peerId: string }
      const rec = await runJob(0, 1000 + j, platform, [], target.peerId)
      if (j > 0) reference.push(rec)
    }

    const refAward = reference.map(j => j.awardMs)
    console.log(`submit -> award, reference (1 agent, job sent to it, ${reference.length} jobs): p50 ${pct(refAward, 50).toFixed(0)} ms, p95 ${pct(refAward, 95).toFixed(0)} ms; to the result p50 ${pct(reference.map(j => j.doneMs), 50).toFixed(0)} ms; pinning the base p50 ${pct(reference.map(j => j.pinMs), 50).toFixed(0)} ms`)
    // The farm: 4 requesters at once, each its share of the jobs one after another.
    const farmStart = performance.now()
    const jobs = (await Promise.all(requesters.map(async (_, r) => {
      const out: JobRecord[] = []
      for (let k = 0; k < JOBS / REQUESTERS; k++) {
        const n = r * (JOBS / REQUESTERS) + k
        const rec = await runJob(r, n, PLATFORMS[n % 2] as string, REQUIREMENTS[Math.floor(n / 2) % REQUIREMENTS.length] as string[])
        say(`job ${n} (requester ${r}, ${rec.platform}${rec.requires.length > 0 ? ` requires ${rec.requires.join(',')}` : ''}): ${rec.error !== undefined ? `failed: ${rec.error}` : `award ${rec.awardMs.toFixed(0)} ms, result ${rec.doneMs.toFixed(0)} ms, ${rec.offers} offer(s)`}`)
        out.push(rec)
      }
      return out
    }))).flat()
    const farmMs = performance.now() - farmStart

    const failed = jobs.filter(j => j.error !== undefined)
    for (const j of failed) console.log(`job failed (requester ${j.requester}, ${j.platform}${j.requires.length > 0 ? ` requires ${j.requires.join(',')}` : ''}): ${j.error ?? ''}`)
    const done = jobs.filter(j => j.error === undefined)
    const wrongBuilder = done.filter(j => { const a = byPeer.get(j.builder); return a === undefined || a.spec.platform !== j.platform || !j.requires.every(c => a.spec.capabilities.includes(c)) })
    const award = done.map(j => j.awardMs)
    const allBlobs = PLATFORMS.flatMap(p => bases[p]!.blobs)
    const stats = await Promise.all(hosts.map(async h => await h.call<{ builds: number[], holding: number[] }>('stats', { blobs: allBlobs }, 60_000)))
    const builds = stats.flatMap(s => s.builds)
    const holding = stats.flatMap(s => s.holding)
    const fetches = upstream.requests().slice(setupRequests).filter(l => l.startsWith('GET '))
    const perBlob = allBlobs.map(b => fetches.filter(l => l.includes(b)).length)
    const layerFetches = PLATFORMS.map(p => fetches.filter(l => l.includes(`/blobs/${bases[p]!.blobs[2] as string}`)).length)

    console.log(`jobs completed: ${done.length} of ${JOBS} in ${(farmMs / 1000).toFixed(1)} s (${REQUESTERS} requesters at once); built by an agent with the platform and capabilities asked: ${done.length - wrongBuilder.length} of ${done.length}`)
    console.log(`submit -> award, farm (${AGENTS} agents, ${done.length} jobs): p50 ${pct(award, 50).toFixed(0)} ms, p95 ${pct(award, 95).toFixed(0)} ms, max ${Math.max(...award).toFixed(0)} ms (goal p95 < 500 ms: ${pct(award, 95) < 500 ? 'met' : 'NOT met'}); offers heard per job: median ${pct(jobs.map(j => j.offers), 50)}`)
    console.log(`farm/reference p95 ${(pct(award, 95) / pct(refAward, 95)).toFixed(2)}x, p50 ${(pct(award, 50) / pct(refAward, 50)).toFixed(2)}x`)
    const phased = done.flatMap(j => j.phases !== undefined ? [j.phases] : [])
    const med = (f: (p: Phases) => number | undefined): string => { const xs = phased.flatMap(p => { const v = f(p); return v !== undefined ? [v] : [] }); return xs.length > 0 ? `${pct(xs, 50).toFixed(0)}/${pct(xs, 95).toFixed(0)}` : '-' }
    console.log(`where the time to the award goes, farm, ms from the submit, p50/p95 over ${phased.length} jobs: signed ${med(p => p.signed)}, published (subscribers waited for, gossip handed over) ${med(p => p.published)}, first offer of a gossip recipient ${med(p => p.gossipOffer)}, first agent found in the DHT ${med(p => p.firstFound)}, last found before the award ${med(p => p.lastFound)}, last direct send ended ${med(p => p.lastSent)}, last answer ${med(p => p.lastAnswer)}, award ${med(p => p.award)}; the last answer came from a gossip recipient in ${phased.filter(p => p.lastAnswerBy === 'gossip').length} jobs, a peer sent the job in ${phased.filter(p => p.lastAnswerBy === 'sent').length}`)
    console.log(`submit -> result, farm: p50 ${pct(done.map(j => j.doneMs), 50).toFixed(0)} ms, p95 ${pct(done.map(j => j.doneMs), 95).toFixed(0)} ms; pinning the base p50 ${pct(jobs.map(j => j.pinMs), 50).toFixed(0)} ms`)
    console.log(`builds per agent: ${builds.join(' ')} (${builds.filter(b => b > 0).length} of ${AGENTS} agents built)`)
    console.log(`base blobs fetched from upstream (GETs in its access log after the push): ${perBlob.join(' ')} per blob (manifest, config, layer of each platform), layers ${layerFetches.join(' ')} (goal 1 each: ${perBlob.every(n => n <= 1) && layerFetches.every(n => n === 1) ? 'met' : 'NOT met'}); agents holding base blobs: ${holding.filter(n => n > 0).length} of ${AGENTS}, fetched peer to peer`)
    console.log(`load average at end: ${load()} (2 cores, shared)`)
  } finally {
    for (const q of requesters) await q.session?.stop().catch(() => {})
    for (const q of requesters) await q.stop?.().catch(() => {})
    await Promise.allSettled(requesters.map(async q => { await q.node.stop() }))
    for (const q of requesters) q.store.close()
    await Promise.allSettled(hosts.map(async h => { await h.close(30_000) }))
    await upstream?.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The phases of one job from its transport trace and the answers heard before the award. */
function phasesOf (trace: Trace, answers: Array<{ at: number, peer: string }>, award: number): Phases {
  const before = (xs: Iterable<number>): number[] => [...xs].filter(x => x <= award)
  const recipients = new Set(trace.publish?.recipients ?? [])
  const gossip = answers.filter(a => recipients.has(a.peer)).map(a => a.at)
  const found = before(trace.found.values())
  const sent = before(trace.sent.values())
  const last = answers.at(-1)
  return {
    signed: trace.publish?.start ?? 0,
    published: trace.publish?.end ?? 0,
    ...(gossip.length > 0 ? { gossipOffer: Math.min(...gossip) } : {}),
    ...(found.length > 0 ? { firstFound: Math.min(...found), lastFound: Math.max(...found) } : {}),
    ...(sent.length > 0 ? { lastSent: Math.max(...sent) } : {}),
    lastAnswer: last?.at ?? 0,
    lastAnswerBy: last === undefined ? 'none' : recipients.has(last.peer) ? 'gossip' : 'sent',
    award
  }
}

await main()
