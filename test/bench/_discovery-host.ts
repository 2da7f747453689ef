/**
 * A child process of the discovery benchmark (test/bench/discovery.ts): it
 * hosts a share of the network's kiln nodes on loopback and does what the
 * parent asks over the IPC channel, one request at a time per message id:
 *
 *   start { count, init }        -> { nodes: [{ peerId, addr }] }
 *   dial  { dials: [[i, addr]] } -> { failed }       (a few at a time)
 *   publish { agents: [{ i, platform, capabilities }] } -> { published }
 *   load  { ms }                 -> { elu, cpuMs, connections }  (event loop and CPU over ms; open connections after)
 *   usage                        -> { cpuMs }        (CPU since the process began)
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
import { performance } from 'node:perf_hooks'
import { createCapabilityAdvertiser, createKilnNode } from '../../src/p2p/index.ts'
import type { CapabilityAdvertiser, KilnNode, KilnNodeInit } from '../../src/p2p/index.ts'
import { mapLimit } from '../../src/util/map-limit.ts'
import { describeAgent } from './_agent-description.ts'
import { serveHost } from './_host-rpc.ts'

export type HostOp = 'start' | 'dial' | 'publish' | 'load' | 'usage' | 'stop'
export interface AgentSpec { platform: string, capabilities: string[] }

interface Member { node: KilnNode, privateKey: PrivateKey, advertiser?: CapabilityAdvertiser }

const members: Member[] = []

async function stopAll (): Promise<void> {
  await Promise.allSettled(members.map(async m => { await m.advertiser?.stop(); await m.node.stop() }))
}

export interface StartArgs { count: number, init: KilnNodeInit }
export interface DialArgs { dials: Array<[number, string]> }
export interface PublishArgs { agents: Array<AgentSpec & { i: number }> }
export interface LoadArgs { ms: number }

const ops = {
  async start ({ count, init }: StartArgs) {
    for (let i = 0; i < count; i++) {
      const privateKey = await generateKeyPair('Ed25519')
      members.push({ privateKey, node: await createKilnNode({ ...init, privateKey }) })
    }
    return { nodes: members.map(m => ({ peerId: m.node.peerId.toString(), addr: m.node.getMultiaddrs()[0]!.toString() })) }
  },
  async dial ({ dials }: DialArgs) {
    let failed = 0
    await mapLimit(dials, 4, async ([i, addr]) => { await members[i]!.node.dial(multiaddr(addr)).catch(() => { failed++ }) })
    return { failed }
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
    const connections = members.reduce((n, m) => n + m.node.getConnections().length, 0)
    return { elu, cpuMs: (cpu.user + cpu.system) / 1000, connections }
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
