/**
 * Discovery benchmark (issue 5, criterion c): capability lookup latency in
 * a 100-node network, all nodes in this process on loopback. 20 of the
 * nodes are agents that publish signed capability records (platform and
 * capability keys provided on the DHT); then lookups with `findAgents`
 * (src/p2p/discovery.ts), one at a time from random non-agent nodes, by
 * platform, by capability and by both. Prints p50/p95/max of the time a
 * lookup takes to return, the time to the first matching agent (the same
 * lookup with `limit: 1`), and recall (agents found / agents that match).
 * Goal: p95 under 1 s.
 *
 * Also prints the event-loop utilisation of the process while the lookups
 * run: every node shares one thread, so a busy loop is the simulation's own
 * bound, not the network's.
 *
 *   npm run bench -- discovery    (KILN_BENCH_NODES=100, KILN_BENCH_AGENTS=20, KILN_BENCH_QUERIES=20)
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import { createCapabilityAdvertiser, createKilnNode, findAgents } from '../../src/p2p/index.ts'
import type { CapabilityAdvertiser, CapabilityDescription, KilnNode, KilnNodeInit } from '../../src/p2p/index.ts'

const NODES = Number(process.env.KILN_BENCH_NODES ?? 100)
const AGENTS = Number(process.env.KILN_BENCH_AGENTS ?? 20)
const QUERIES = Number(process.env.KILN_BENCH_QUERIES ?? 20)
/** One process holds every node: a query asks 3 peers at a time (not kad-dht's 10) and dials are bounded, as in the integration test. */
const NODE_INIT: KilnNodeInit = {
  listen: ['/ip4/127.0.0.1/tcp/0'],
  dht: { alpha: 3 },
  connections: { maxParallelDials: 8, dialTimeout: 30_000, addressDialTimeout: 30_000, inboundUpgradeTimeout: 30_000 }
}
const PLATFORMS = ['linux/amd64', 'linux/arm64', 'linux/ppc64le', 'linux/riscv64']
const CAPABILITIES = ['gpu', 'mpi', 'fakeroot']

interface Member { node: KilnNode, privateKey: PrivateKey, advertiser?: CapabilityAdvertiser, spec?: { platform: string, capabilities: string[] } }

/** A deterministic pseudo-random sequence, so runs compare. */
function rng (seed: number): () => number {
  let s = seed >>> 0
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32 }
}

async function mapLimit<T, R> (items: T[], n: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) { const i = next++; out[i] = await fn(items[i] as T, i) }
  }))
  return out
}

function describe (spec: { platform: string, capabilities: string[] }): CapabilityDescription {
  return {
    platforms: [{ platform: spec.platform, features: [] }],
    emulated: [],
    capabilities: spec.capabilities,
    details: {},
    limits: { cpus: 4, memoryBytes: 8 << 30, diskBytes: 100 << 30 },
    queue: { queued: 0, running: 0 }
  }
}

/** Waits until the event loop was less than half busy over one second, or ms passed. */
async function settle (ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    const before = performance.eventLoopUtilization()
    await new Promise(resolve => setTimeout(resolve, 1000))
    if (performance.eventLoopUtilization(before).utilization < 0.5) return
  }
}

const pct = (xs: number[], p: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(p / 100 * s.length) - 1)] as number }

async function main (): Promise<void> {
  const rand = rng(5)
  const t0 = performance.now()
  const members: Member[] = []
  try {
    for (let i = 0; i < NODES; i++) {
      const privateKey = await generateKeyPair('Ed25519')
      members.push({ privateKey, node: await createKilnNode({ ...NODE_INIT, privateKey }) })
    }
    // Each node joins through the first node and two random earlier ones; the DHT's self queries find the rest.
    await mapLimit(members.slice(1), 4, async (m, k) => {
      const i = k + 1
      const targets = new Set([0, Math.floor(rand() * i), Math.floor(rand() * i)])
      for (const t of targets) await m.node.dial(members[t]!.node.getMultiaddrs()[0]!).catch(() => {})
    })
    // The DHT's own self queries fill the routing tables; wait until the thread is no longer busy with them.
    await settle(60_000)
    const formed = (performance.now() - t0) / 1000

    const agentIdx = Array.from({ length: AGENTS }, (_, k) => Math.floor(k * NODES / AGENTS) + 1).filter(i => i < NODES)
    await mapLimit(agentIdx, 2, async (i, k) => {
      const m = members[i]!
      m.spec = { platform: PLATFORMS[k % PLATFORMS.length]!, capabilities: CAPABILITIES.filter((_, c) => (k >> c) % 2 === 1) }
      m.advertiser = createCapabilityAdvertiser({ node: m.node, privateKey: m.privateKey, describe: () => describe(m.spec!), publishTimeoutMs: 30_000 })
      await m.advertiser.start()
      for (let attempt = 0; m.advertiser.published() === undefined && attempt < 3; attempt++) await m.advertiser.publish().catch(() => {})
      if (m.advertiser.published() === undefined) throw new Error(`agent ${i} could not publish its record`)
    })
    await settle(60_000)
    const published = (performance.now() - t0) / 1000
    console.log(`${NODES} nodes (${agentIdx.length} agents), formed in ${formed.toFixed(1)} s, records published by ${published.toFixed(1)} s; load ${loadavg().map(l => l.toFixed(1)).join(' ')}, ${process.version}`)

    const elu0 = performance.eventLoopUtilization()
    const askers = members.filter(m => m.spec === undefined)
    const full: number[] = []
    const first: number[] = []
    let wanted = 0
    let got = 0
    for (let q = 0; q < QUERIES; q++) {
      const kind = q % 3
      const platform = kind !== 1 ? PLATFORMS[Math.floor(rand() * PLATFORMS.length)] : undefined
      const capability = kind !== 0 ? CAPABILITIES[Math.floor(rand() * CAPABILITIES.length)] : undefined
      const asker = askers[Math.floor(rand() * askers.length)]!
      const expected = new Set(members.filter(m => m.spec !== undefined && (platform === undefined || m.spec.platform === platform) && (capability === undefined || m.spec.capabilities.includes(capability))).map(m => m.node.peerId.toString()))
      const a = performance.now()
      const found = await findAgents(asker.node, { platform, capability })
      full.push(performance.now() - a)
      const b = performance.now()
      const one = await findAgents(asker.node, { platform, capability, limit: 1 })
      if (expected.size > 0) first.push(performance.now() - b)
      if (one.length === 0 && expected.size > 0) console.log(`  query ${q}: limit 1 found nothing of ${expected.size}`)
      wanted += expected.size
      got += found.filter(r => expected.has(r.peerId)).length
    }
    const line = (label: string, xs: number[]): void => {
      console.log(`  ${label.padEnd(34)} p50 ${pct(xs, 50).toFixed(0).padStart(5)} ms  p95 ${pct(xs, 95).toFixed(0).padStart(5)} ms  max ${Math.max(...xs).toFixed(0).padStart(5)} ms  (${xs.length} lookups)  ${pct(xs, 95) < 1000 ? 'goal met' : 'goal (p95 < 1 s) NOT met'}`)
    }
    const elu = performance.eventLoopUtilization(elu0).utilization
    console.log(`(c) capability lookup with findAgents, one at a time; load ${loadavg()[0]!.toFixed(1)}; event loop busy ${(100 * elu).toFixed(0)}% during the lookups`)
    line('whole answer (every match)', full)
    line('first match (limit: 1)', first)
    console.log(`  recall: ${got} of ${wanted} matching agents found (${(100 * got / Math.max(1, wanted)).toFixed(1)}%)`)
  } finally {
    await Promise.allSettled(members.map(async m => { await m.advertiser?.stop(); await m.node.stop() }))
  }
}

await main().catch((err: unknown) => { console.error(err); process.exitCode = 1 })
process.exit()
