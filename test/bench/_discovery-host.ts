/**
 * A child process of the discovery and scale benchmarks
 * (test/bench/discovery.ts, test/bench/scale.ts): it hosts a share of the
 * network's kiln nodes on loopback and does what the parent asks over the
 * IPC channel, one request at a time per message id. Nodes are numbered in
 * the order they started here (`local`), stopped ones included:
 *
 *   start { count, init }        -> { nodes: [{ peerId, addr }] }
 *   agents { dir, init, agents: [{ platform, capabilities, listen, join: [addr] }], requesters }
 *                                -> { nodes: [{ local, peerId, addr }] }  (instant agents, ./_instant-agent.ts,
 *                                   each started once it has dialled its join addrs)
 *   dial  { dials: [[i, addr]] } -> { failed }       (a few at a time, each tried 3 times)
 *   churn { stop: [i], start: [[addr]], init } -> { nodes: [{ local, peerId, addr }], failed }
 *                                   (stops nodes, starts one new node per entry, each dialing its addrs)
 *   publish { agents: [{ i, platform, capabilities }] } -> { published }
 *   load  { ms }                 -> { elu, cpuMs, connections, nodes, rss, heapUsed }
 *                                   (event loop and CPU over ms; then open connections, running nodes, memory)
 *   usage                        -> { cpuMs }        (CPU since the process began)
 *   builds                       -> { builds, published }  (builds run by this host's instant agents; agents whose record is out)
 *   stop                         -> {}               (then the process exits)
 *
 * It exits by itself when the parent goes away (the IPC channel closes), so
 * a killed bench leaves no node behind.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createCapabilityAdvertiser, createKilnNode } from '../../src/p2p/index.ts'
import type { CapabilityAdvertiser, KilnNode, KilnNodeInit } from '../../src/p2p/index.ts'
import { mapLimit } from '../../src/util/map-limit.ts'
import { describeAgent } from './_agent-description.ts'
import { serveHost } from './_host-rpc.ts'
import { startInstantAgent } from './_instant-agent.ts'
import type { InstantAgent } from './_instant-agent.ts'

export type HostOp = 'start' | 'agents' | 'dial' | 'churn' | 'publish' | 'load' | 'usage' | 'builds' | 'stop'
export interface AgentSpec { platform: string, capabilities: string[] }

interface Member { node: KilnNode, privateKey: PrivateKey, advertiser?: CapabilityAdvertiser, agent?: InstantAgent, stopped?: Promise<void> }

const members: Member[] = []

async function stopMember (m: Member): Promise<void> {
  m.stopped ??= (async () => {
    await m.advertiser?.stop()
    if (m.agent !== undefined) {
      await m.agent.agent.stop()
      m.agent.store.close()
    }
    await m.node.stop()
  })()
  await m.stopped
}

async function stopAll (): Promise<void> {
  await Promise.allSettled(members.map(stopMember))
}

async function startMember (init: KilnNodeInit): Promise<Member> {
  const privateKey = await generateKeyPair('Ed25519')
  const m = { privateKey, node: await createKilnNode({ ...init, privateKey }) }
  members.push(m)
  return m
}

const described = (m: Member): { local: number, peerId: string, addr: string } =>
  ({ local: members.indexOf(m), peerId: m.node.peerId.toString(), addr: m.node.getMultiaddrs()[0]!.toString() })

/** Dials addr from node, again under load when a handshake times out (bounded). */
async function dialRetrying (node: KilnNode, addr: string): Promise<boolean> {
  for (let attempt = 1; attempt <= 3; attempt++) {
    try { await node.dial(multiaddr(addr), { signal: AbortSignal.timeout(30_000) }); return true } catch {}
  }
  return false
}

export interface StartArgs { count: number, init: KilnNodeInit }
export interface AgentsArgs { dir: string, init: KilnNodeInit, agents: Array<AgentSpec & { listen: string, join: string[] }>, requesters: string[] }
export interface DialArgs { dials: Array<[number, string]> }
export interface ChurnArgs { stop: number[], start: string[][], init: KilnNodeInit }
export interface PublishArgs { agents: Array<AgentSpec & { i: number }> }
export interface LoadArgs { ms: number }

const ops = {
  async start ({ count, init }: StartArgs) {
    for (let i = 0; i < count; i++) await startMember(init)
    return { nodes: members.map(m => ({ peerId: m.node.peerId.toString(), addr: m.node.getMultiaddrs()[0]!.toString() })) }
  },
  async agents ({ dir, init, agents, requesters }: AgentsArgs) {
    const started: Member[] = []
    for (const spec of agents) {
      const m = await startMember({ ...init, listen: [spec.listen] })
      // Joined first, so that the agent's first publication walks a network, not a lone node's table.
      await Promise.all(spec.join.map(async a => await dialRetrying(m.node, a)))
      m.agent = await startInstantAgent({ node: m.node, privateKey: m.privateKey, dir: join(dir, `agent-${process.pid}-${members.length - 1}`), spec, requesters })
      started.push(m)
    }
    return { nodes: started.map(described) }
  },
  async dial ({ dials }: DialArgs) {
    let failed = 0
    await mapLimit(dials, 4, async ([i, addr]) => { if (!await dialRetrying(members[i]!.node, addr)) failed++ })
    return { failed }
  },
  async churn ({ stop, start, init }: ChurnArgs) {
    await Promise.all(stop.map(async i => { await stopMember(members[i]!) }))
    let failed = 0
    const started: Member[] = []
    for (const addrs of start) {
      const m = await startMember(init)
      started.push(m)
      for (const ok of await Promise.all(addrs.map(async a => await dialRetrying(m.node, a)))) if (!ok) failed++
    }
    return { nodes: started.map(described), failed }
  },
  async publish ({ agents }: PublishArgs) {
    let published = 0
    await mapLimit(agents, 2, async (a) => {
      const m = members[a.i]!
      m.advertiser = createCapabilityAdvertiser({ node: m.node, privateKey: m.privateKey, describe: () => describeAgent(a), publishTimeoutMs: 30_000 })
      await m.advertiser.start()
      for (let attempt = 0; m.advertiser.published() === undefined && attempt < 3; attempt++) await m.advertiser.publish().catch(() => {})
      if (m.advertiser.published() !== undefined) published++
    })
    return { published }
  },
  async load ({ ms }: LoadArgs) {
    // The idle window (5 s) is profiled when the bench asks for profiles.
    const profiler = ms >= 5000 && process.env.KILN_BENCH_PROFILE_DIR !== undefined ? new Session() : undefined
    profiler?.connect()
    await profiler?.post('Profiler.enable')
    await profiler?.post('Profiler.start')
    const elu0 = performance.eventLoopUtilization()
    const cpu0 = process.cpuUsage()
    await new Promise(resolve => setTimeout(resolve, ms))
    const cpu = process.cpuUsage(cpu0)
    const elu = performance.eventLoopUtilization(elu0).utilization
    if (profiler !== undefined) {
      const { profile } = await profiler.post('Profiler.stop')
      await writeFile(`${process.env.KILN_BENCH_PROFILE_DIR}/host-${process.pid}.cpuprofile`, JSON.stringify(profile))
      profiler.disconnect()
    }
    const live = members.filter(m => m.stopped === undefined)
    const connections = live.reduce((n, m) => n + m.node.getConnections().length, 0)
    const mem = process.memoryUsage()
    return { elu, cpuMs: (cpu.user + cpu.system) / 1000, connections, nodes: live.length, rss: mem.rss, heapUsed: mem.heapUsed }
  },
  async builds () {
    const agents = members.filter(m => m.agent !== undefined && m.stopped === undefined)
    return { builds: agents.reduce((n, m) => n + m.agent!.builds.n, 0), published: agents.filter(m => m.agent!.agent.advertiser.published() !== undefined).length }
  },
  async usage () {
    const cpu = process.cpuUsage()
    return { cpuMs: (cpu.user + cpu.system) / 1000 }
  },
  async stop () {
    await stopAll()
    return {}
  }
}

serveHost(ops, stopAll)
