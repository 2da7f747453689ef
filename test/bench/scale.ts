/**
 * Scale benchmark (issue 20, item 3): a network of KILN_BENCH_NODES nodes
 * (default 1000) on loopback, in KILN_BENCH_HOSTS child processes (default
 * 8, test/bench/_discovery-host.ts) plus the bench process, with 20% of the
 * nodes replaced while lookups and jobs run.
 *
 * The network: every node is a kiln node with createKilnNode's defaults
 * (TCP+TLS on loopback, kad-dht server, gossipsub, a ping per connection a
 * minute) but kad-dht alpha 3, as in the discovery bench. KILN_BENCH_AGENTS
 * of them (default 200) are full agents with an instant builder
 * (./_instant-agent.ts), each on its own 127.0.x.y address, over 4
 * platforms with `gpu`, `mpi` and `fakeroot` in turn; the rest are plain
 * nodes. 4 requesters live in the bench process; they also run the
 * lookups. Each node joins by dialling 3 random nodes started before it:
 * the plain nodes first, then the agents and requesters into that network.
 *
 * Figures:
 * - idle cost per node once the network is quiet: CPU of the host
 *   processes over 10 s and their RSS over an empty host's, divided by the
 *   nodes they hold, with connections per node;
 * - capability lookups (`findAgents` by platform, capability or both, one
 *   at a time): p50/p95/max and recall (matching agents found / matching
 *   agents) (goal: p95 < 1 s, recall >= 99%);
 * - jobs (FROM scratch, one at a time, the requesters in turn, each to any
 *   agent of its platform with its requirement): submit -> award p50/p95
 *   (goal p95 < 500 ms) and how many completed;
 * each measured twice: on the still network (the reference) and while 20%
 * of the nodes (KILN_BENCH_CHURN, plain nodes, chosen by a seeded
 * generator) are stopped and as many new ones started and joined, in 10
 * rounds spread over the measurement. The ratios churn / still are printed.
 * The agents and requesters stay: recall is measured against agents that
 * exist. Everything is bounded: KILN_BENCH_MINUTES (default 60) ends the
 * measurement early, with what was measured.
 *
 *   npm run bench -- scale
 *   (KILN_BENCH_NODES=1000 KILN_BENCH_HOSTS=8 KILN_BENCH_AGENTS=200 KILN_BENCH_QUERIES=30 KILN_BENCH_JOBS=20
 *    KILN_BENCH_CHURN=0.2 KILN_BENCH_SEED=7; KILN_BENCH_PING_MS=10000 runs the nodes with libp2p's ping interval)
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { freemem, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { openLocalStore } from '../../src/content/index.ts'
import type { LocalStore } from '../../src/content/index.ts'
import { createKilnNode, findAgents } from '../../src/p2p/index.ts'
import type { KilnNode, KilnNodeInit } from '../../src/p2p/index.ts'
import { startRequesterSession } from '../../src/requester/index.ts'
import type { RequesterSession } from '../../src/requester/index.ts'
import { PolicyConfig, createTrustPolicy } from '../../src/trust/index.ts'
import { pino } from 'pino'
import type { AgentSpec, AgentsArgs, ChurnArgs, DialArgs, HostOp, LoadArgs, StartArgs } from './_discovery-host.ts'
import { BenchHost } from './_host-rpc.ts'

const env = (name: string, fallback: number): number => Number(process.env[`KILN_BENCH_${name}`] ?? fallback)
const NODES = env('NODES', 1000)
const HOSTS = env('HOSTS', 8)
const AGENTS = env('AGENTS', 200)
const REQUESTERS = 4
const QUERIES = env('QUERIES', 30)
const JOBS = env('JOBS', 20)
const CHURN = env('CHURN', 0.2)
const ROUNDS = 10
const SEED = env('SEED', 7)
const DEADLINE = Date.now() + env('MINUTES', 60) * 60_000
/** RSS per node measured at 60 nodes (17–18 MiB, agents included), and per host process before its first node. */
const NODE_MIB = 20
const HOST_MIB = 200
/** The longest wait for the agents' first capability records before measuring anyway. */
const PUBLISH_MS = 5 * 60_000
const NODE_INIT: KilnNodeInit = {
  listen: ['/ip4/127.0.0.1/tcp/0'],
  dht: { alpha: 3 },
  ...(process.env.KILN_BENCH_PING_MS !== undefined ? { pingInterval: Number(process.env.KILN_BENCH_PING_MS) } : {})
}
const PLATFORMS = ['linux/amd64', 'linux/arm64', 'linux/ppc64le', 'linux/riscv64']
const CAPABILITIES = ['gpu', 'mpi', 'fakeroot']
const REQUIREMENTS: string[][] = [[], ['gpu'], [], ['mpi']]
/** KILN_DEBUG_DISCOVERY=1 prints why a lookup missed or waited on a candidate. */
const log = process.env.KILN_DEBUG_DISCOVERY !== undefined ? pino({ level: 'debug' }, pino.destination(2)) : undefined
/** A host is idle enough to measure when its event loop is busy less than this. */
const SETTLED_ELU = 0.15

/** A deterministic pseudo-random sequence, so runs compare. */
function rng (seed: number): () => number {
  let s = seed >>> 0
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32 }
}
const rand = rng(SEED)
const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)] as T
const pct = (xs: number[], p: number): number => { if (xs.length === 0) return NaN; const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(p / 100 * s.length) - 1)] as number }
const load = (): string => loadavg().map(x => x.toFixed(1)).join(' ')
const say = (what: string): void => { process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${what} (load ${load()})\n`) }
const MiB = 2 ** 20

interface Usage { elu: number, cpuMs: number, connections: number, nodes: number, rss: number, heapUsed: number }
interface Started { local: number, peerId: string, addr: string }

/** One child process hosting nodes (./_host-rpc.ts), with the ops' argument types. */
class Host extends BenchHost<HostOp> {
  constructor (index: number) {
    super(join(import.meta.dirname, '_discovery-host.ts'), index)
  }

  override async call<R>(op: 'start', args: StartArgs, ms: number): Promise<R>
  override async call<R>(op: 'agents', args: AgentsArgs, ms: number): Promise<R>
  override async call<R>(op: 'dial', args: DialArgs, ms: number): Promise<R>
  override async call<R>(op: 'churn', args: ChurnArgs, ms: number): Promise<R>
  override async call<R>(op: 'load', args: LoadArgs, ms: number): Promise<R>
  override async call<R>(op: 'usage' | 'builds' | 'stop', args: undefined, ms: number): Promise<R>
  override async call<R> (op: HostOp, args: unknown, ms: number): Promise<R> {
    return await super.call<R>(op, args, ms)
  }
}

/** A node of the network: where it lives (host -1: the bench process), and what it advertises. */
interface NodeRef { host: number, local: number, peerId: string, addr: string, spec?: AgentSpec, live: boolean }
interface Requester { key: PrivateKey, node: KilnNode, store: LocalStore, session?: RequesterSession }
interface Phase { lookups: number[], wanted: number, found: number, wrong: number, award: number[], jobs: number, done: number, failures: string[] }

async function main (): Promise<void> {
  // Memory is what a machine runs out of first (no swap here): refuse a network that cannot fit, and say what would.
  const needMiB = NODES * NODE_MIB + (HOSTS + 1) * HOST_MIB
  const haveMiB = freemem() / MiB
  if (needMiB > 0.8 * haveMiB) {
    const fits = Math.floor((0.8 * haveMiB - (HOSTS + 1) * HOST_MIB) / NODE_MIB)
    console.log(`scale: skipped, ${NODES} nodes need about ${(needMiB / 1024).toFixed(1)} GiB (${NODE_MIB} MiB per node, ${HOST_MIB} MiB per process) and this machine has ${(haveMiB / 1024).toFixed(1)} GiB available; KILN_BENCH_NODES=${fits} fits in 80% of it`)
    return
  }
  const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-scale-'))
  const hosts = Array.from({ length: HOSTS }, (_, h) => new Host(h))
  const requesters: Requester[] = []
  const killAll = (): void => { for (const h of hosts) h.kill() }
  process.once('SIGINT', () => { killAll(); rmSync(dir, { recursive: true, force: true }); process.exit(130) })
  process.once('SIGTERM', () => { killAll(); rmSync(dir, { recursive: true, force: true }); process.exit(143) })
  const t0 = performance.now()
  console.log(`load average at start: ${load()}`)
  try {
    // An empty host's memory: what a host process costs before its first node.
    const empty = await Promise.all(hosts.map(async h => await h.call<Usage>('load', { ms: 100 }, 60_000)))
    const plainCount = NODES - AGENTS - REQUESTERS
    if (plainCount < 0) throw new Error(`KILN_BENCH_NODES (${NODES}) must be at least KILN_BENCH_AGENTS + ${REQUESTERS}`)
    const share = (n: number, h: number): number => Math.floor(n / HOSTS) + (h < n % HOSTS ? 1 : 0)

    for (let r = 0; r < REQUESTERS; r++) {
      const key = await generateKeyPair('Ed25519')
      const node = await createKilnNode({ ...NODE_INIT, privateKey: key, listen: [`/ip4/127.0.50.${2 + r}/tcp/0`] })
      requesters.push({ key, node, store: await openLocalStore(join(dir, `requester-${r}`)) })
    }
    const requesterIds = requesters.map(q => peerIdFromPrivateKey(q.key).toString())

    // Plain nodes first, each joining through 3 random nodes started before it; then the agents and the
    // requesters join the formed network the same way.
    const plain = await Promise.all(hosts.map(async (h, k) => await h.call<{ nodes: Array<{ peerId: string, addr: string }> }>('start', { count: share(plainCount, k), init: NODE_INIT }, 1_800_000)))
    const refs: NodeRef[] = plain.flatMap((s, host) => s.nodes.map((n, local) => ({ host, local, ...n, live: true })))
    const joinAddrs = (before: number): string[] => [...new Set([0, 1, 2].map(() => refs[Math.floor(rand() * before)]!.addr))]
    const dials: Array<Array<[number, string]>> = hosts.map(() => [])
    refs.forEach((r, i) => { if (i > 0) for (const addr of joinAddrs(i)) dials[r.host]!.push([r.local, addr]) })
    const dialed = await Promise.all(hosts.map(async (h, k) => await h.call<{ failed: number }>('dial', { dials: dials[k]! }, 1_800_000)))
    say(`${refs.length} plain nodes started in ${HOSTS} processes and joined (${dialed.reduce((n, d) => n + d.failed, 0)} of ${dials.flat().length} dials failed)`)
    let g = 0
    const agentSpecs = hosts.map((_, k) => Array.from({ length: share(AGENTS, k) }, () => {
      // Agent g: platform g mod 4; capabilities the bits of g div 4, so that each platform has every combination.
      const spec = { platform: PLATFORMS[g % PLATFORMS.length]!, capabilities: CAPABILITIES.filter((_, c) => (Math.floor(g / PLATFORMS.length) >> c) % 2 === 1), listen: `/ip4/127.0.${10 + Math.floor(g / 250)}.${2 + g % 250}/tcp/0`, join: joinAddrs(refs.length) }
      g++
      return spec
    }))
    const agents = await Promise.all(hosts.map(async (h, k) => await h.call<{ nodes: Started[] }>('agents', { dir, init: NODE_INIT, agents: agentSpecs[k]!, requesters: requesterIds }, 1_800_000)))
    agents.forEach((a, host) => a.nodes.forEach((n, i) => refs.push({ host, ...n, spec: agentSpecs[host]![i]!, live: true })))
    let requesterDialsFailed = 0
    await Promise.all(requesters.map(async (q, local) => {
      for (const addr of joinAddrs(refs.length)) {
        // Under load a handshake may time out: try again (bounded).
        for (let attempt = 1; ; attempt++) {
          try { await q.node.dial(multiaddr(addr), { signal: AbortSignal.timeout(30_000) }); break } catch { if (attempt === 3) { requesterDialsFailed++; break } }
        }
      }
      refs.push({ host: -1, local, peerId: q.node.peerId.toString(), addr: q.node.getMultiaddrs()[0]!.toString(), live: true })
    }))
    say(`${AGENTS} agents and ${REQUESTERS} requesters started and joined (${requesterDialsFailed} requester dials failed)`)

    // Ready when every agent's capability record is out (at most PUBLISH_MS), and the network is quiet.
    const agentCount = refs.filter(r => r.spec !== undefined).length
    const publishBy = Math.min(DEADLINE, Date.now() + PUBLISH_MS)
    let published = 0
    for (let told = Date.now(); published < agentCount && Date.now() < publishBy;) {
      const stats = await Promise.all(hosts.map(async h => await h.call<{ published: number }>('builds', undefined, 60_000)))
      published = stats.reduce((n, s) => n + s.published, 0)
      if (Date.now() - told > 30_000) { say(`${published} of ${agentCount} capability records published`); told = Date.now() }
      if (published < agentCount) await new Promise(resolve => setTimeout(resolve, 2000))
    }
    say(`${published} of ${agentCount} capability records published`)
    const policy = createTrustPolicy(PolicyConfig.parse({ version: 1, peers: refs.filter(r => r.spec !== undefined).map(r => ({ peer: r.peerId, roles: ['builder'] })) }))
    for (const q of requesters) q.session = await startRequesterSession({ node: q.node, key: q.key, store: q.store, policy })
    say(`requesters connected to ${requesters.map(q => q.node.getConnections().length).join(', ')} peers; job topic subscribers they know: ${requesters.map(q => PLATFORMS.map(p => q.node.services.pubsub.getSubscribers(`kiln/jobs/v1/${p}`).length).join('/')).join(', ')}`)
    await settle(hosts, 300_000)
    const formed = (performance.now() - t0) / 1000

    const idle = await Promise.all(hosts.map(async h => await h.call<Usage>('load', { ms: 10_000 }, 120_000)))
    const hosted = idle.reduce((n, u) => n + u.nodes, 0)
    const idleCpu = idle.reduce((n, u) => n + u.cpuMs, 0) / 10_000
    const idleRss = idle.reduce((n, u, k) => n + u.rss - empty[k]!.rss, 0)
    const idleHeap = idle.reduce((n, u, k) => n + u.heapUsed - empty[k]!.heapUsed, 0)
    const conns = idle.reduce((n, u) => n + u.connections, 0) / hosted
    console.log(`network: ${NODES} nodes (${agentCount} agents, ${published} with their record published when measuring started, ${REQUESTERS} requesters in the bench process, the rest plain) in ${HOSTS} host processes; formed and quiet in ${formed.toFixed(0)} s; ping interval ${NODE_INIT.pingInterval ?? 'kiln default'}; ${process.version}`)
    console.log(`idle, ${hosted} hosted nodes: ${(100 * idleCpu).toFixed(1)}% of one core in total, ${(100 * idleCpu / hosted).toFixed(3)}% per node; RSS ${(idleRss / MiB).toFixed(0)} MiB over empty hosts, ${(idleRss / hosted / MiB).toFixed(1)} MiB per node (JS heap ${(idleHeap / hosted / MiB).toFixed(1)} MiB); ${conns.toFixed(1)} connections per node; event loops busy ${idle.map(u => (100 * u.elu).toFixed(0) + '%').join(' ')}; load ${load()}`)

    const ctxDir = join(dir, 'ctx')
    mkdirSync(ctxDir)
    writeFileSync(join(ctxDir, 'f'), 'context\n')
    const contexts = await Promise.all(requesters.map(async q => await q.session!.shareContext(ctxDir)))
    let jobNo = 0
    let queryNo = 0

    const lookup = async (phase: Phase): Promise<void> => {
      const kind = queryNo % 3
      const platform = kind !== 1 ? pick(PLATFORMS) : undefined
      const capability = kind !== 0 ? pick(CAPABILITIES) : undefined
      const asker = requesters[queryNo++ % REQUESTERS]!
      const expected = new Set(refs.filter(r => r.spec !== undefined && (platform === undefined || r.spec.platform === platform) && (capability === undefined || r.spec.capabilities.includes(capability))).map(r => r.peerId))
      const a = performance.now()
      const found = await findAgents(asker.node, { platform, capability, log })
      phase.lookups.push(performance.now() - a)
      const hits = found.filter(r => expected.has(r.peerId)).length
      phase.wanted += expected.size
      phase.found += hits
      phase.wrong += found.length - hits
    }
    const job = async (phase: Phase): Promise<void> => {
      const n = jobNo++
      const r = n % REQUESTERS
      const platform = PLATFORMS[n % PLATFORMS.length]!
      const requires = REQUIREMENTS[Math.floor(n / PLATFORMS.length) % REQUIREMENTS.length]!
      const start = performance.now()
      let awardMs = 0
      phase.jobs++
      const result = await requesters[r]!.session!.requester.submit({
        recipe: { kind: 'dockerfile', file: 'Dockerfile', text: `FROM scratch\nCOPY f /f\n# job ${n}\n` }, context: contexts[r]!, platforms: [platform],
        ...(requires.length > 0 ? { requirements: requires } : {}),
        signal: AbortSignal.timeout(120_000),
        onEvent: e => { if (e.kind === 'award' && awardMs === 0) awardMs = performance.now() - start }
      }).catch((err: Error) => err)
      if (awardMs > 0) phase.award.push(awardMs)
      if (result instanceof Error) phase.failures.push(`job ${n} (${platform}${requires.length > 0 ? ` requires ${requires.join(',')}` : ''}): ${result.message}`)
      else phase.done++
    }
    const newPhase = (): Phase => ({ lookups: [], wanted: 0, found: 0, wrong: 0, award: [], jobs: 0, done: 0, failures: [] })
    /** QUERIES lookups and JOBS jobs, interleaved, in `rounds` slices; `between(r)` runs beside slice r. */
    const measure = async (phase: Phase, rounds: number, between: (r: number) => Promise<void>): Promise<void> => {
      for (let r = 0; r < rounds && Date.now() < DEADLINE; r++) {
        const beside = between(r)
        const q = Math.round((r + 1) * QUERIES / rounds) - Math.round(r * QUERIES / rounds)
        const j = Math.round((r + 1) * JOBS / rounds) - Math.round(r * JOBS / rounds)
        for (let k = 0; k < Math.max(q, j) && Date.now() < DEADLINE; k++) {
          if (k < q) await lookup(phase)
          if (k < j) await job(phase)
        }
        await beside
      }
    }

    // The reference: the still network. A first lookup and job warm up, uncounted.
    const warm = newPhase()
    await lookup(warm)
    await job(warm)
    const still = newPhase()
    await measure(still, 1, async () => {})
    say('still network measured')

    // Churn: each round stops CHURN/ROUNDS of the nodes (plain ones, live) and starts as many, each joining through 3 live nodes.
    const churned = newPhase()
    const perRound = Math.round(CHURN * NODES / ROUNDS)
    let stopped = 0
    let started = 0
    let joinFailures = 0
    const churnRound = async (): Promise<void> => {
      const candidates = refs.filter(r => r.live && r.spec === undefined && r.host >= 0)
      const leaving = new Set<NodeRef>()
      while (leaving.size < Math.min(perRound, candidates.length)) leaving.add(pick(candidates))
      const stay = refs.filter(r => r.live && !leaving.has(r))
      for (const r of leaving) r.live = false
      const byHost = hosts.map(h => [...leaving].filter(r => r.host === h.index))
      const results = await Promise.all(hosts.map(async (h, k) => await h.call<{ nodes: Started[], failed: number }>('churn', {
        stop: byHost[k]!.map(r => r.local),
        start: byHost[k]!.map(() => [0, 1, 2].map(() => pick(stay).addr)),
        init: NODE_INIT
      }, 600_000)))
      results.forEach((res, host) => { for (const n of res.nodes) refs.push({ host, ...n, live: true }); joinFailures += res.failed; started += res.nodes.length })
      stopped += leaving.size
    }
    await measure(churned, ROUNDS, churnRound)
    say(`churn measured: ${stopped} nodes stopped, ${started} started`)
    const after = await Promise.all(hosts.map(async h => await h.call<Usage>('load', { ms: 5000 }, 120_000)))
    const afterNodes = after.reduce((n, u) => n + u.nodes, 0)

    const line = (label: string, p: Phase, ref?: Phase): void => {
      const ratio = (f: (x: Phase) => number): string => ref !== undefined ? ` (${(f(p) / f(ref)).toFixed(2)}x the still network)` : ''
      const lp95 = pct(p.lookups, 95)
      const ap95 = pct(p.award, 95)
      console.log(`${label}:`)
      console.log(`  lookup, whole answer: p50 ${pct(p.lookups, 50).toFixed(0)} ms, p95 ${lp95.toFixed(0)} ms${ratio(x => pct(x.lookups, 95))}, max ${Math.max(...p.lookups).toFixed(0)} ms (${p.lookups.length} lookups; goal p95 < 1 s: ${lp95 < 1000 ? 'met' : 'NOT met'})`)
      console.log(`  recall: ${p.found} of ${p.wanted} matching agents found (${(100 * p.found / Math.max(1, p.wanted)).toFixed(1)}%; goal >= 99%: ${p.wanted > 0 && p.found >= 0.99 * p.wanted ? 'met' : 'NOT met'})${p.wrong > 0 ? `, ${p.wrong} NOT MATCHING` : ''}`)
      console.log(`  submit -> award: p50 ${pct(p.award, 50).toFixed(0)} ms, p95 ${ap95.toFixed(0)} ms${ratio(x => pct(x.award, 95))}, max ${Math.max(...p.award).toFixed(0)} ms (${p.award.length} awards; goal p95 < 500 ms: ${ap95 < 500 ? 'met' : 'NOT met'}); jobs completed ${p.done} of ${p.jobs}`)
      for (const f of p.failures) console.log(`    ${f}`)
    }
    line('still network (reference)', still)
    line(`while ${stopped} nodes were stopped and ${started} started (${(100 * stopped / NODES).toFixed(0)}% churn, ${joinFailures} join dials failed)`, churned, still)
    console.log(`after the churn: ${afterNodes} hosted nodes, ${(100 * after.reduce((n, u) => n + u.cpuMs, 0) / 5000 / afterNodes).toFixed(3)}% of a core and ${(after.reduce((n, u, k) => n + u.rss - empty[k]!.rss, 0) / afterNodes / MiB).toFixed(1)} MiB RSS per node (not yet idle: the routing tables still drop the stopped nodes), ${(after.reduce((n, u) => n + u.connections, 0) / afterNodes).toFixed(1)} connections per node`)
    if (Date.now() >= DEADLINE) console.log(`(stopped at the KILN_BENCH_MINUTES bound: the figures above are what was measured by then)`)
    console.log(`load average at end: ${load()} (2 cores, shared); ${((performance.now() - t0) / 1000).toFixed(0)} s in all`)
  } finally {
    for (const q of requesters) await q.session?.stop().catch(() => {})
    await Promise.allSettled(requesters.map(async q => { await q.node.stop() }))
    for (const q of requesters) q.store.close()
    await Promise.allSettled(hosts.map(async h => { await h.close(60_000) }))
    killAll()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Waits until every host's event loop was busy less than SETTLED_ELU over one second, or ms passed. */
async function settle (hosts: Host[], ms: number): Promise<void> {
  const deadline = Math.min(Date.now() + ms, DEADLINE)
  while (Date.now() < deadline) {
    const loads = await Promise.all(hosts.map(async h => await h.call<{ elu: number }>('load', { ms: 1000 }, 60_000)))
    if (loads.every(l => l.elu < SETTLED_ELU)) return
  }
  console.log(`(the hosts were still busy after ${ms / 1000} s; measuring anyway)`)
}

await main().catch((err: unknown) => { console.error(err); process.exitCode = 1 })
process.exit()
