/**
 * createNodeStatus (src/node/status.ts), the status page's source: this
 * node from its capability description, connected peers (a peer that does
 * not answer is listed without a record), the agent's jobs with their log
 * tails (running first, then the newest finished), and store usage as
 * `kiln store df` computes it, measured once per STORE_USAGE_TTL_MS. Then
 * startGatewayNode serving it over HTTP.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import type { JobAgent } from '../../../agent/jobs/index.ts'
import { loadConfig } from '../../../src/config/index.ts'
import { openLocalStore } from '../../../src/content/index.ts'
import type { StatusDocument } from '../../../src/gateway/index.ts'
import { createNodeStatus, startGatewayNode, storeUsage } from '../../../src/node/index.ts'
import type { KilnNode } from '../../../src/p2p/index.ts'
import { tempDirs } from '../../helpers/temp.ts'

const dirs = tempDirs('kiln-node-status-')
const closers: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c()
  dirs.cleanup()
})

function fakeJobs (): JobAgent {
  const status = [
    { jobId: 'running', platform: 'linux/amd64', requester: 'r', state: 'building' as const },
    { jobId: 'old', platform: 'linux/amd64', requester: 'r', state: 'succeeded' as const, digest: 'sha256:aa' },
    { jobId: 'new', platform: 'linux/amd64', requester: 'r', state: 'failed' as const, error: 'boom' }
  ]
  return { status: () => status, logTail: (jobId: string) => [`log of ${jobId}`] } as unknown as JobAgent
}

describe('createNodeStatus', () => {
  it('describes this node, its peers, jobs and store usage', async () => {
    const store = await openLocalStore(dirs.make())
    closers.push(() => { store.close() })
    await store.content.ingest(Buffer.from('a blob of 20 bytes..'))
    const [self, other] = await Promise.all([generateKeyPair('Ed25519'), generateKeyPair('Ed25519')])
    const otherId = peerIdFromPrivateKey(other)
    let dials = 0
    const node = {
      peerId: peerIdFromPrivateKey(self),
      getMultiaddrs: () => [multiaddr('/ip4/127.0.0.1/tcp/4001')],
      getPeers: () => [otherId],
      getConnections: () => [{ remoteAddr: multiaddr('/ip4/10.0.0.9/tcp/4001') }],
      dialProtocol: async () => { dials++; throw new Error('no route') }
    } as unknown as KilnNode
    const source = createNodeStatus({
      store,
      quota: 1 << 20,
      node,
      description: { platforms: [{ platform: 'linux/amd64', features: [] }], emulated: [], capabilities: ['gpu'], details: {}, limits: { cpus: 1, memoryBytes: 1, diskBytes: 1 }, queue: { queued: 0, running: 0 }, institution: 'uni-a' },
      jobs: fakeJobs()
    })
    const s = await source.snapshot()
    expect(s.node).toEqual({ peerId: node.peerId.toString(), addresses: ['/ip4/127.0.0.1/tcp/4001'], platforms: ['linux/amd64'], capabilities: ['gpu'], institution: 'uni-a', takesJobs: true })
    expect(s.peers).toEqual([{ peerId: otherId.toString(), addresses: ['/ip4/10.0.0.9/tcp/4001'] }])
    expect(s.jobs.map(j => [j.jobId, j.log])).toEqual([['running', ['log of running']], ['new', ['log of new']], ['old', ['log of old']]])
    const df = await storeUsage(store, 1 << 20)
    expect(s.store).toMatchObject({ blobs: 1, bytes: 20, quota: 1 << 20, pins: 0, buildCache: { bytes: df.buildCache.bytes }, filesystem: { sizeBytes: df.filesystem.sizeBytes } })
    // Cached: a new blob shows only once the usage is measured again; the peer is not asked again at once.
    await store.content.ingest(Buffer.from('another'))
    const again = await source.snapshot()
    expect(again.store?.blobs).toBe(1)
    expect(again.store?.measuredAt).toBe(s.store?.measuredAt)
    expect(dials).toBe(1)
  })

  it('is what startGatewayNode serves at /_kiln/status.json', async () => {
    const dataDir = dirs.make()
    const config = await loadConfig({ env: {}, overrides: { dataDir } })
    const store = await openLocalStore(dataDir)
    closers.push(() => { store.close() })
    await store.content.ingest(Buffer.from('one blob'))
    const gw = await startGatewayNode({ config, store, log: pino({ level: 'silent' }), host: '127.0.0.1', port: 0, anonymousPush: true })
    closers.push(gw.close)
    const doc = await (await fetch(`${gw.url}/_kiln/status.json`)).json() as StatusDocument
    expect(doc.node).toBeUndefined()
    expect(doc.gateway.access).toBe('open')
    expect(doc.store).toMatchObject({ blobs: 1, bytes: 8, quota: null })
    const page = await fetch(`${gw.url}/_kiln/status`)
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'/)
    expect(await page.text()).toContain('<title>kiln status</title>')
  })
})
