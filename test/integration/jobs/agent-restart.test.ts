/**
 * An agent that stops mid-build (crash, node reboot) must not lose the job
 * silently: on restart it finds the job in its journal and hands it back to
 * the requester (a failed result without a start: protocols/job.md §3); a
 * repeated award after that builds it afresh. An agent stopped on purpose
 * hands back what it holds as cancelled results.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, describe, expect, it } from 'vitest'
import { createAgentJobStore, createJobAgent } from '../../../agent/jobs/index.ts'
import type { JobAgent } from '../../../agent/jobs/index.ts'
import { openDb } from '../../../src/db/index.ts'
import { createMemoryJobNetwork, isHandBack, openFrame, seal } from '../../../src/jobs/index.ts'
import type { ResultPayload } from '../../../protocols/job.ts'
import { sha256Digest } from '../../../src/content/digest.ts'
import type { OpenedFrame } from '../../../src/jobs/index.ts'
import { PolicyConfig, createTrustPolicy } from '../../../src/trust/index.ts'

const stops: Array<() => Promise<void>> = []
afterEach(async () => { for (const s of stops.splice(0)) await s() })

describe('agent restart', () => {
  it('hands back a job it held when it stopped, and builds it afresh on a repeated award', async () => {
    const reqKey = await generateKeyPair('Ed25519')
    const agentKey = await generateKeyPair('Ed25519')
    const reqId = peerIdFromPrivateKey(reqKey).toString()
    const db = openDb(':memory:')
    stops.push(async () => { db.close() })
    const journal = createAgentJobStore(db)
    const { envelope: job } = await seal(reqKey, 'job', {
      jobId: 'restart-test-1', recipe: { kind: 'dockerfile', file: 'Dockerfile', text: 'FROM scratch\n', digest: sha256Digest('FROM scratch\n') },
      context: { digest: `sha256:${'b'.repeat(64)}`, size: 0 }, platforms: ['linux/amd64'], requirements: [], buildArgs: {}, network: false
    })
    // What the previous run of the agent left: the job accepted and building.
    journal.accepted({ jobId: 'restart-test-1', platform: 'linux/amd64', requester: reqId, job })
    journal.state('restart-test-1', 'linux/amd64', 'building')

    const net = createMemoryJobNetwork()
    const received: OpenedFrame[] = []
    const reqTransport = net.connect(reqId)
    reqTransport.onFrame(bytes => { void openFrame(bytes).then(m => received.push(m)) })
    let builds = 0
    const start = (): JobAgent => {
      const a = createJobAgent({
        key: agentKey,
        transport: net.connect(peerIdFromPrivateKey(agentKey).toString()),
        policy: createTrustPolicy(PolicyConfig.parse({ version: 1, peers: [{ peer: reqId, roles: ['requester'] }] })),
        builder: { build: async () => { builds++; throw new Error('fake build failure') } },
        context: { open: async () => ({ dir: '/nonexistent', release: async () => {} }) },
        platforms: ['linux/amd64'],
        journal
      })
      a.start()
      stops.push(async () => { await a.stop() })
      return a
    }
    const agent = start()
    await expect.poll(() => received.filter(m => m.type === 'result').length, { timeout: 10_000 }).toBe(1)
    const result = received.find(m => m.type === 'result')
    expect(result?.envelope.payload).toMatchObject({ jobId: 'restart-test-1', status: 'failed', error: expect.stringMatching(/restarted while the job was building/) })
    expect(journal.unfinished()).toEqual([])
    expect(agent.status()).toContainEqual(expect.objectContaining({ jobId: 'restart-test-1', state: 'failed' }))

    expect(isHandBack(result?.envelope.payload as ResultPayload)).toBe(true)

    // The requester asks again: the agent builds it this time (here the fake build fails, a real outcome, not a hand-back).
    const { frame } = await seal(reqKey, 'award', { jobId: 'restart-test-1', platform: 'linux/amd64', builder: agent.peerId, job })
    await reqTransport.send(agent.peerId, [frame])
    await expect.poll(() => received.filter(m => m.type === 'result').length, { timeout: 10_000 }).toBe(2)
    const again = received.filter(m => m.type === 'result')[1]
    expect(again?.envelope.payload).toMatchObject({ status: 'failed', error: 'fake build failure' })
    expect(isHandBack(again?.envelope.payload as ResultPayload)).toBe(false)
    expect(builds).toBe(1)
  })
})
