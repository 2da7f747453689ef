/**
 * A bench agent that builds instantly (test/bench/_farm-host.ts,
 * test/bench/_discovery-host.ts): a full agent (`startAgent`,
 * agent/runtime.ts: the given libp2p node, its own store, journal,
 * capability record, job agent and base source) whose builder writes a
 * one-layer image into its store at once, so that the job protocol and the
 * network are what a bench measures, not a build.
 */
import type { PrivateKey } from '@libp2p/interface'
import { startAgent } from '../../agent/runtime.ts'
import type { Agent } from '../../agent/runtime.ts'
import type { JobBuilder } from '../../agent/jobs/index.ts'
import { openLocalStore } from '../../src/content/index.ts'
import type { LocalStore } from '../../src/content/index.ts'
import type { KilnNode } from '../../src/p2p/index.ts'
import { PolicyConfig, createTrustPolicy } from '../../src/trust/index.ts'
import { describeAgent } from './_agent-description.ts'

export interface InstantAgent { agent: Agent, store: LocalStore, builds: { n: number } }

/** An image of one tiny layer, written into the agent's store once the job's bases are held: the build costs nothing. */
export function instantBuilder (store: LocalStore, platform: string, builds: { n: number }): JobBuilder {
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

/** Starts an instant agent on `node` with its store in `dir`, trusting `requesters` (peer ids) to submit. */
export async function startInstantAgent (init: {
  node: KilnNode, privateKey: PrivateKey, dir: string, spec: { platform: string, capabilities: string[] }, requesters: string[]
}): Promise<InstantAgent> {
  const { node, privateKey, spec } = init
  const policy = createTrustPolicy(PolicyConfig.parse({ version: 1, peers: init.requesters.map(peer => ({ peer, roles: ['requester'] })) }))
  const store = await openLocalStore(init.dir)
  const builds = { n: 0 }
  try {
    const agent = await startAgent({
      node, privateKey, store: store.content, db: store.db, provideStore: false,
      describe: () => describeAgent(spec),
      jobs: {
        db: store.db, refs: store.refs, dataDir: store.root, platforms: [spec.platform], capabilities: spec.capabilities,
        builder: instantBuilder(store, spec.platform, builds), policy, certs: []
      }
    })
    return { agent, store, builds }
  } catch (err) {
    store.close()
    throw err
  }
}
