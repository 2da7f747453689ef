/**
 * A child process of the farm benchmark (test/bench/farm.ts): it hosts a
 * share of the farm's agents on loopback, each a full agent (`startAgent`,
 * agent/runtime.ts: its own libp2p node, store, journal, capability record,
 * job agent and base source) with an instant builder, so that the job
 * protocol and the travel of bases are what is measured, not a build. It
 * does what the parent asks over the IPC channel:
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
import { startAgent } from '../../agent/runtime.ts'
import type { Agent } from '../../agent/runtime.ts'
import type { JobBuilder } from '../../agent/jobs/index.ts'
import { openLocalStore } from '../../src/content/index.ts'
import type { Digest, LocalStore } from '../../src/content/index.ts'
import { createKilnNode } from '../../src/p2p/index.ts'
import { PolicyConfig, createTrustPolicy } from '../../src/trust/index.ts'
import { mapLimit } from '../../src/util/map-limit.ts'
import { describeAgent } from './_agent-description.ts'
import { serveHost } from './_host-rpc.ts'

export type FarmHostOp = 'start' | 'dial' | 'stats' | 'stop'
export interface FarmAgentSpec { platform: string, capabilities: string[], listen: string }
export interface FarmStartArgs { dir: string, agents: FarmAgentSpec[], requesters: string[] }
export interface FarmDialArgs { dials: Array<[number, string]> }
export interface FarmStatsArgs { blobs: string[] }

interface Member { agent: Agent, store: LocalStore, builds: { n: number } }
const members: Member[] = []

/** An image of one tiny layer, written into the agent's store once the job's bases are held: the build costs nothing. */
function instantBuilder (store: LocalStore, platform: string, builds: { n: number }): JobBuilder {
  const enc = new TextEncoder()
  return {
    build: async (req) => {
      builds.n++
      const layer = await store.content.ingest(enc.encode(`layer ${req.platform} ${req.recipe.digest}`))
      const config = await store.content.ingest(enc.encode(JSON.stringify({ architecture: platform.split('/')[1], os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } })))
      const manifest = await store.content.ingest(enc.encode(JSON.stringify({
        schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }]
      })))
      return { ...manifest, mediaType: 'application/vnd.oci.image.manifest.v1+json', blobs: [config, layer], baseDigests: [], steps: 1, cachedSteps: 0 }
    }
  }
}

async function stopAll (): Promise<void> {
  await Promise.allSettled(members.map(async m => { await m.agent.stop() }))
  for (const m of members) m.store.close()
}

const ops = {
  async start ({ dir, agents, requesters }: FarmStartArgs) {
    const policy = createTrustPolicy(PolicyConfig.parse({ version: 1, peers: requesters.map(peer => ({ peer, roles: ['requester'] })) }))
    for (const [i, spec] of agents.entries()) {
      const privateKey = await generateKeyPair('Ed25519')
      const store = await openLocalStore(join(dir, `agent-${process.pid}-${i}`))
      const node = await createKilnNode({ privateKey, listen: [spec.listen], mdns: false })
      const builds = { n: 0 }
      const agent = await startAgent({
        node, privateKey, store: store.content, db: store.db, provideStore: false,
        describe: () => describeAgent(spec),
        jobs: {
          db: store.db, refs: store.refs, dataDir: store.root, platforms: [spec.platform], capabilities: spec.capabilities,
          builder: instantBuilder(store, spec.platform, builds), policy, certs: []
        }
      })
      members.push({ agent, store, builds })
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
