/**
 * A child process of the farm benchmark (test/bench/farm.ts): it hosts a
 * share of the farm's agents on loopback, each a full agent with an instant
 * builder (./_instant-agent.ts), so that the job protocol and the travel of
 * bases are what is measured, not a build. It does what the parent asks
 * over the IPC channel:
 *
 *   start { dir, agents: [{ platform, capabilities, listen }], requesters } -> { agents: [{ peerId, addr }] }
 *   dial  { dials: [[i, addr]] }  -> { failed }
 *   stats { blobs }               -> { builds: [n per agent], holding: [blobs of `blobs` each agent holds] }
 *   stop                          -> {}   (then the process exits)
 *
 * It exits by itself when the parent goes away (the IPC channel closes), so
 * a killed bench leaves no node behind.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { join } from 'node:path'
import type { Digest } from '../../src/content/index.ts'
import { createKilnNode } from '../../src/p2p/index.ts'
import { mapLimit } from '../../src/util/map-limit.ts'
import { startInstantAgent } from './_instant-agent.ts'
import type { InstantAgent } from './_instant-agent.ts'
import { serveHost } from './_host-rpc.ts'

export type FarmHostOp = 'start' | 'dial' | 'stats' | 'stop'
export interface FarmAgentSpec { platform: string, capabilities: string[], listen: string }
export interface FarmStartArgs { dir: string, agents: FarmAgentSpec[], requesters: string[] }
export interface FarmDialArgs { dials: Array<[number, string]> }
export interface FarmStatsArgs { blobs: string[] }

const members: InstantAgent[] = []

async function stopAll (): Promise<void> {
  await Promise.allSettled(members.map(async m => { await m.agent.stop() }))
  for (const m of members) m.store.close()
}

const ops = {
  async start ({ dir, agents, requesters }: FarmStartArgs) {
    for (const [i, spec] of agents.entries()) {
      const privateKey = await generateKeyPair('Ed25519')
      const node = await createKilnNode({ privateKey, listen: [spec.listen], mdns: false })
      members.push(await startInstantAgent({ node, privateKey, dir: join(dir, `agent-${process.pid}-${i}`), spec, requesters }))
    }
    return { agents: members.map(m => ({ peerId: m.agent.node.peerId.toString(), addr: m.agent.node.getMultiaddrs()[0]!.toString() })) }
  },
  async dial ({ dials }: FarmDialArgs) {
    let failed = 0
    await mapLimit(dials, 4, async ([i, addr]) => {
      // Under load a handshake may time out: try again (bounded).
      for (let attempt = 1; attempt <= 3; attempt++) {
        try { await members[i]!.agent.node.dial(multiaddr(addr), { signal: AbortSignal.timeout(30_000) }); return } catch { if (attempt === 3) failed++ }
      }
    })
    return { failed }
  },
  async stats ({ blobs }: FarmStatsArgs) {
    const holding = await Promise.all(members.map(async m => (await Promise.all(blobs.map(async b => await m.store.content.has(b as Digest)))).filter(Boolean).length))
    return { builds: members.map(m => m.builds.n), holding }
  },
  async stop () {
    await stopAll()
    return {}
  }
}

serveHost(ops, stopAll)
