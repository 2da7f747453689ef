/**
 * Discovery benchmark (issue 5, criterion c): capability lookup latency in
 * a 100-node network on loopback (goal: p95 under 1 s).
 *
 * Topology: the nodes are spread over separate processes, as real agents
 * would be: KILN_BENCH_HOSTS child processes (test/bench/_discovery-host.ts,
 * default 4) host all nodes but the askers, and KILN_BENCH_ASKERS nodes
 * (default 4) live in this process and run the lookups. Every node is a
 * full kiln node with createKilnNode's defaults (TCP on 127.0.0.1 with the
 * node's encryption and yamux, kad-dht server, gossipsub) but kad-dht alpha
 * 3; they meet only over loopback TCP. 20 of the hosted nodes are
 * agents publishing signed capability records (platform and capability keys
 * provided on the DHT). Then lookups with `findAgents`
 * (src/p2p/discovery.ts), one at a time from the askers in turn, by
 * platform, by capability and by both. Prints p50/p95/max of the time a
 * lookup takes to return, the time to the first matching agent (the same
 * lookup with `limit: 1`), and recall (agents found / agents that match).
 *
 * Also prints the CPU the hosted nodes burn while idle (background work:
 * DHT self queries, routing-table refresh, gossipsub heartbeats, and, most
 * of it in profiles, libp2p's connection-monitor ping of every connection,
 * once a minute since docs/network.md#idle-cost (10 s before), plus yamux
 * keepalives, ~50 connections per node) and during
 * the lookups, and the load average: the machine has two cores, shared.
 *
 *   npm run bench -- discovery
 *   (KILN_BENCH_NODES=100 KILN_BENCH_AGENTS=20 KILN_BENCH_QUERIES=20 KILN_BENCH_HOSTS=4 KILN_BENCH_ASKERS=4)
 *
 * KILN_DEBUG_DISCOVERY=1 logs each provider search and candidate read of the
 * lookups to stderr; KILN_BENCH_PROFILE_DIR=dir writes CPU profiles of the
 * lookups (this process) and of each host's idle window.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { join } from 'node:path'
import { loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import { pino } from 'pino'
import { createKilnNode, findAgents } from '../../src/p2p/index.ts'
import type { KilnNode, KilnNodeInit } from '../../src/p2p/index.ts'
import type { AgentSpec, DialArgs, HostOp, LoadArgs, PublishArgs, StartArgs } from './_discovery-host.ts'
import { BenchHost } from './_host-rpc.ts'
import { mapLimit } from '../../src/util/map-limit.ts'

const NODES = Number(process.env.KILN_BENCH_NODES ?? 100)
const AGENTS = Number(process.env.KILN_BENCH_AGENTS ?? 20)
const QUERIES = Number(process.env.KILN_BENCH_QUERIES ?? 20)
const HOSTS = Number(process.env.KILN_BENCH_HOSTS ?? 4)
const ASKERS = Number(process.env.KILN_BENCH_ASKERS ?? 4)
/** kiln's node defaults, but a query asks 3 peers at a time (not kad-dht's 10): 100 nodes on two cores. */
const NODE_INIT: KilnNodeInit = {
  listen: ['/ip4/127.0.0.1/tcp/0'],
  dht: { alpha: 3 }
}
/** KILN_DEBUG_DISCOVERY=1 prints why a lookup missed or waited on a candidate. */
const log = process.env.KILN_DEBUG_DISCOVERY !== undefined ? pino({ level: 'debug' }, pino.destination(2)) : undefined
const PLATFORMS = ['linux/amd64', 'linux/arm64', 'linux/ppc64le', 'linux/riscv64']
const CAPABILITIES = ['gpu', 'mpi', 'fakeroot']
/** A host is idle enough to start measuring when its event loop is busy less than this. */
const SETTLED_ELU = 0.15

/** A deterministic pseudo-random sequence, so runs compare. */
function rng (seed: number): () => number {
  let s = seed >>> 0
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32 }
}

const pct = (xs: number[], p: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(p / 100 * s.length) - 1)] as number }

/** One child process hosting nodes (./_host-rpc.ts), with the ops' argument types. */
class Host extends BenchHost<HostOp> {
  constructor (index: number) {
    super(join(import.meta.dirname, '_discovery-host.ts'), index,
      // `node --cpu-prof test/bench/discovery.ts` profiles the lookups' side only.
      process.execArgv.filter(a => !a.startsWith('--cpu-prof')))
  }

  override async call<R>(op: 'start', args: StartArgs, ms: number): Promise<R>
  override async call<R>(op: 'dial', args: DialArgs, ms: number): Promise<R>
  override async call<R>(op: 'publish', args: PublishArgs, ms: number): Promise<R>
  override async call<R>(op: 'load', args: LoadArgs, ms: number): Promise<R>
  override async call<R>(op: 'usage' | 'stop', args: undefined, ms: number): Promise<R>
  override async call<R> (op: HostOp, args: unknown, ms: number): Promise<R> {
    return await super.call<R>(op, args, ms)
  }
}

interface NodeRef { host: number, local: number, peerId: string, addr: string, spec?: AgentSpec }

async function main (): Promise<void> {
  const rand = rng(5)
  const t0 = performance.now()
  const hosts = Array.from({ length: HOSTS }, (_, h) => new Host(h))
  const askers: KilnNode[] = []
  const killAll = (): void => { for (const h of hosts) h.kill() }
  process.once('SIGINT', () => { killAll(); process.exit(130) })
  process.once('SIGTERM', () => { killAll(); process.exit(143) })
  try {
    // Nodes: the hosts' shares first (numbered in host order), then the askers here.
    const hosted = NODES - ASKERS
    const shares = hosts.map(h => Math.floor(hosted / HOSTS) + (h.index < hosted % HOSTS ? 1 : 0))
    const started = await Promise.all(hosts.map(async (h, k) => await h.call<{ nodes: Array<{ peerId: string, addr: string }> }>('start', { count: shares[k]!, init: NODE_INIT }, 120_000)))
    const refs: NodeRef[] = started.flatMap((s, h) => s.nodes.map((n, local) => ({ host: h, local, ...n })))
    for (let i = 0; i < ASKERS; i++) {
      const node = await createKilnNode({ ...NODE_INIT, privateKey: await generateKeyPair('Ed25519') })
      askers.push(node)
      refs.push({ host: -1, local: i, peerId: node.peerId.toString(), addr: node.getMultiaddrs()[0]!.toString() })
    }

    // Each node joins through the first node and two random earlier ones; the DHT's self queries find the rest.
    const dials: Array<Array<[number, string]>> = hosts.map(() => [])
    const askerDials: Array<[number, string]> = []
    refs.forEach((r, i) => {
      if (i === 0) return
      for (const t of new Set([0, Math.floor(rand() * i), Math.floor(rand() * i)])) {
        if (r.host >= 0) dials[r.host]!.push([r.local, refs[t]!.addr])
        else askerDials.push([r.local, refs[t]!.addr])
      }
    })
    await Promise.all([
      ...hosts.map(async (h, k) => await h.call('dial', { dials: dials[k]! }, 120_000)),
      mapLimit(askerDials, 4, async ([i, addr]) => { await askers[i]!.dial(multiaddr(addr)).catch(() => {}) })
    ])
    await settle(hosts, 90_000)
    const formed = (performance.now() - t0) / 1000

    // Agents: spread evenly over the hosted nodes.
    const agentIdx = Array.from({ length: AGENTS }, (_, k) => Math.floor(k * hosted / AGENTS) + 1).filter(i => i < hosted)
    agentIdx.forEach((i, k) => { refs[i]!.spec = { platform: PLATFORMS[k % PLATFORMS.length]!, capabilities: CAPABILITIES.filter((_, c) => (k >> c) % 2 === 1) } })
    const results = await Promise.all(hosts.map(async (h, k) => await h.call<{ published: number }>('publish', {
      agents: refs.filter(r => r.host === k && r.spec !== undefined).map(r => ({ i: r.local, ...r.spec! }))
    }, 600_000)))
    const published = results.reduce((n, r) => n + r.published, 0)
    if (published < agentIdx.length) throw new Error(`only ${published} of ${agentIdx.length} agents could publish their records`)
    await settle(hosts, 90_000)
    const ready = (performance.now() - t0) / 1000

    // Background cost of the warm network, before any lookup.
    const idle = await Promise.all(hosts.map(async h => await h.call<{ elu: number, cpuMs: number, connections: number }>('load', { ms: 5000 }, 30_000)))
    const idleCpu = idle.reduce((n, l) => n + l.cpuMs, 0) / 5000
    console.log(`topology: ${NODES} nodes on 127.0.0.1 TCP (kiln node defaults, kad-dht alpha 3): ${HOSTS} host processes with ${shares.join('/')} nodes, ${agentIdx.length} of them agents; ${ASKERS} asking nodes in the bench process, which runs the lookups`)
    console.log(`formed in ${formed.toFixed(1)} s, records published and network idle by ${ready.toFixed(1)} s; ${process.version}`)
    console.log(`idle background of the ${hosted} hosted nodes: ${(100 * idleCpu).toFixed(0)}% of one core in total (event loops busy ${idle.map(l => (100 * l.elu).toFixed(0) + '%').join(' ')}), ${(idle.reduce((n, l) => n + l.connections, 0) / hosted).toFixed(0)} connections per node; load ${loadavg().map(l => l.toFixed(1)).join(' ')}`)

    const cpu0 = await Promise.all(hosts.map(async h => await h.call<{ cpuMs: number }>('usage', undefined, 10_000)))
    const profiler = process.env.KILN_BENCH_PROFILE_DIR !== undefined ? new Session() : undefined
    profiler?.connect()
    await profiler?.post('Profiler.enable')
    await profiler?.post('Profiler.start')
    const elu0 = performance.eventLoopUtilization()
    const lookups0 = performance.now()
    const full: number[] = []
    const first: number[] = []
    let wanted = 0
    let got = 0
    for (let q = 0; q < QUERIES; q++) {
      const kind = q % 3
      const platform = kind !== 1 ? PLATFORMS[Math.floor(rand() * PLATFORMS.length)] : undefined
      const capability = kind !== 0 ? CAPABILITIES[Math.floor(rand() * CAPABILITIES.length)] : undefined
      const asker = askers[q % askers.length]!
      const expected = new Set(refs.filter(r => r.spec !== undefined && (platform === undefined || r.spec.platform === platform) && (capability === undefined || r.spec.capabilities.includes(capability))).map(r => r.peerId))
      const a = performance.now()
      const found = await findAgents(asker, { platform, capability, log })
      full.push(performance.now() - a)
      const b = performance.now()
      const one = await findAgents(asker, { platform, capability, limit: 1, log })
      if (expected.size > 0) first.push(performance.now() - b)
      const hits = found.filter(r => expected.has(r.peerId)).length
      const wrong = found.length - hits + one.filter(r => !expected.has(r.peerId)).length
      console.log(`  query ${String(q).padStart(2)} asker ${q % askers.length} ${(platform ?? '*').padEnd(13)} ${(capability ?? '*').padEnd(8)} ${(full.at(-1)!).toFixed(0).padStart(5)} ms  ${hits}/${expected.size} found${wrong > 0 ? `, ${wrong} NOT MATCHING` : ''};  limit 1: ${(performance.now() - b).toFixed(0).padStart(5)} ms, ${one.length} found`)
      wanted += expected.size
      got += hits
    }
    const lookupMs = performance.now() - lookups0
    if (profiler !== undefined) {
      const { profile } = await profiler.post('Profiler.stop')
      await writeFile(`${process.env.KILN_BENCH_PROFILE_DIR}/lookups-${process.pid}.cpuprofile`, JSON.stringify(profile))
      profiler.disconnect()
    }
    const elu = performance.eventLoopUtilization(elu0).utilization
    const cpu1 = await Promise.all(hosts.map(async h => await h.call<{ cpuMs: number }>('usage', undefined, 10_000)))
    const hostCpu = cpu1.reduce((n, c, k) => n + c.cpuMs - cpu0[k]!.cpuMs, 0) / lookupMs
    const line = (label: string, xs: number[]): void => {
      console.log(`  ${label.padEnd(34)} p50 ${pct(xs, 50).toFixed(0).padStart(5)} ms  p95 ${pct(xs, 95).toFixed(0).padStart(5)} ms  max ${Math.max(...xs).toFixed(0).padStart(5)} ms  (${xs.length} lookups)  ${pct(xs, 95) < 1000 ? 'goal met' : 'goal (p95 < 1 s) NOT met'}`)
    }
    console.log(`(c) capability lookup with findAgents, one at a time from the bench process; load ${loadavg().map(l => l.toFixed(1)).join(' ')}; bench event loop busy ${(100 * elu).toFixed(0)}%, host processes ${(100 * hostCpu).toFixed(0)}% of one core in total during the lookups`)
    line('whole answer (every match)', full)
    line('first match (limit: 1)', first)
    console.log(`  recall: ${got} of ${wanted} matching agents found (${(100 * got / Math.max(1, wanted)).toFixed(1)}%)`)
  } finally {
    await Promise.allSettled([...askers.map(async n => { await n.stop() }), ...hosts.map(async h => { await h.close(20_000) })])
    killAll()
  }
}

/** Waits until every host's event loop was busy less than SETTLED_ELU over one second, or ms passed. */
async function settle (hosts: Host[], ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    const loads = await Promise.all(hosts.map(async h => await h.call<{ elu: number }>('load', { ms: 1000 }, 30_000)))
    if (loads.every(l => l.elu < SETTLED_ELU)) return
  }
  console.log(`(the hosts were still busy after ${ms / 1000} s; measuring anyway)`)
}

await main().catch((err: unknown) => { console.error(err); process.exitCode = 1 })
process.exit()
