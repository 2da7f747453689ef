/**
 * Who a job reaches and when the offer window closes (protocols/job.md §5),
 * over the in-memory network: "near" agents subscribe to their platform's
 * topic and get the gossip; "far" agents do not (gossip does not reach
 * them), and the requester's transport finds them, as the DHT would, a
 * little after the job is published. The requester must send the job to
 * the far ones, count their offers, and not close the window when the near
 * ones have answered.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { describe, expect, it } from 'vitest'
import { createJobAgent } from '../../../agent/jobs/index.ts'
import type { BuildOutput, JobBuilder } from '../../../agent/jobs/index.ts'
import { createRequester } from '../../../src/requester/index.ts'
import type { JobEvent, Requester } from '../../../src/requester/index.ts'
import { createMemoryJobNetwork } from '../../../src/jobs/index.ts'
import type { FoundAgent, JobTransport, MemoryJobNetwork } from '../../../src/jobs/index.ts'
import { PolicyConfig, createTrustPolicy } from '../../../src/trust/index.ts'
import type { Ed25519PrivateKey } from '../../../src/trust/index.ts'
import { id, memoryBlobs, stopsAfterEach } from './memory.ts'

const { put, image, fetch } = memoryBlobs()
/** When the stand-in DHT search reports the far agents, after publication. */
const SEARCH_MS = 150
const WINDOW_MS = 3000

/** Every builder of a platform makes the same image (reproducible), so --verify 2 agrees. */
const builder: JobBuilder = {
  async build (req): Promise<BuildOutput> {
    return image(`layer for ${req.platform}`, req.platform)
  }
}

interface Member { key: Ed25519PrivateKey, platforms: string[] }

describe('a job reaches agents gossip does not', () => {
  const stops = stopsAfterEach()
  let net: MemoryJobNetwork

  const agent = async (opts: { platforms: string[], capabilities?: string[], far?: boolean, failedSends?: number }): Promise<Member> => {
    const key = await generateKeyPair('Ed25519')
    const inner = net.connect(id(key))
    // A far agent's subscription never reaches the requester's side: only a direct send gets it the job.
    let failing = opts.failedSends ?? 0
    const transport: JobTransport = {
      ...inner,
      ...(opts.far === true ? { subscribe: () => {} } : {}),
      // Its first sends fail, as a dial to the requester's address from an earlier run does.
      send: async (peer, frames) => {
        if (failing-- > 0) throw new Error('All multiaddr dials failed')
        await inner.send(peer, frames)
      }
    }
    const a = createJobAgent({
      key,
      transport,
      policy: createTrustPolicy(PolicyConfig.parse({ version: 1, open: true })),
      builder,
      context: { open: async () => ({ dir: '/ctx', release: async () => {} }) },
      platforms: opts.platforms,
      capabilities: opts.capabilities ?? [],
      heartbeatMs: 50
    })
    a.start()
    stops.push(async () => { await a.stop() })
    return { key, platforms: opts.platforms }
  }

  /**
   * A requester whose transport "finds" `advertised` SEARCH_MS after a
   * search starts; with `endless`, a search that finds nobody and runs until
   * it is ended (a slow DHT on a busy network), noting when in `searchEnded`;
   * with `finding: n`, the first n searches find and the later ones are endless.
   */
  const requester = async (advertised: Member[], opts: { endless?: boolean, finding?: number } = {}): Promise<{ r: Requester, searches: string[], searchEnded: () => number }> => {
    const key = await generateKeyPair('Ed25519')
    const searches: string[] = []
    let ended = 0
    const transport: JobTransport = {
      ...net.connect(id(key)),
      findAgents: async ({ platform, capabilities, signal, onAgent }) => {
        searches.push(`${platform} ${capabilities.join(',')}`)
        if (opts.endless === true || (opts.finding !== undefined && searches.length > opts.finding)) {
          await new Promise<void>(resolve => { signal.addEventListener('abort', () => { resolve() }, { once: true }) })
          ended = Date.now()
          return
        }
        await new Promise(resolve => setTimeout(resolve, SEARCH_MS))
        if (signal.aborted) return
        for (const m of advertised) {
          const found: FoundAgent = { peer: id(m.key), platforms: m.platforms }
          if (m.platforms.includes(platform)) onAgent(found)
        }
      }
    }
    const r = createRequester({
      key,
      transport,
      policy: createTrustPolicy(PolicyConfig.parse({ version: 1, open: true })),
      blobs: { fetch },
      offerWindowMs: WINDOW_MS,
      heartbeatMs: 50
    })
    stops.push(() => { r.stop() })
    return { r, searches, searchEnded: () => ended }
  }

  const spec = (platforms: string[], extra: Partial<Parameters<Requester['submit']>[0]> = {}): Parameters<Requester['submit']>[0] => ({
    recipe: { kind: 'dockerfile', file: 'Dockerfile', text: `FROM scratch\n# ${Math.random()}` },
    context: put(`context ${Math.random()}`),
    platforms,
    ...extra
  })

  it('waits for the far agents the search finds, sends them the job, and closes the window once all answered', async () => {
    net = createMemoryJobNetwork()
    const near = await agent({ platforms: ['linux/amd64'] })
    const far1 = await agent({ platforms: ['linux/amd64'], capabilities: ['cuda=12.4'], far: true })
    const far2 = await agent({ platforms: ['linux/amd64'], capabilities: ['cuda=12.4'], far: true })
    const { r, searches } = await requester([near, far1, far2])
    const events: JobEvent[] = []
    const started = Date.now()
    const out = await r.submit(spec(['linux/amd64'], { requirements: ['cuda>=12'], verify: 2, onEvent: e => events.push(e) }))
    const awardedAt = events.findIndex(e => e.kind === 'award')
    expect(searches).toEqual(['linux/amd64 cuda'])
    expect([...out.platforms[0]?.builders ?? []].sort()).toEqual([id(far1.key), id(far2.key)].sort())
    // The near agent's decline came first; the window stayed open for the far ones, then closed before its end.
    expect(events.slice(0, awardedAt)).toContainEqual(expect.objectContaining({ kind: 'decline', builder: id(near.key), reason: 'lacks cuda>=12' }))
    expect(events.slice(0, awardedAt).filter(e => e.kind === 'offer').map(e => e.kind === 'offer' ? e.builder : '').sort()).toEqual([id(far1.key), id(far2.key)].sort())
    expect(Date.now() - started).toBeLessThan(WINDOW_MS)
  })

  it('awards without waiting for a search still running, once the agents reached have answered with enough offers', async () => {
    net = createMemoryJobNetwork()
    const near = await agent({ platforms: ['linux/amd64'] })
    const { r, searchEnded } = await requester([], { endless: true })
    let awardedAt = 0
    const started = Date.now()
    const out = await r.submit(spec(['linux/amd64'], { onEvent: e => { if (e.kind === 'award') awardedAt = Date.now() } }))
    expect(out.platforms[0]?.builders).toEqual([id(near.key)])
    // The award ended the search; the window did not run out.
    expect(awardedAt - started).toBeLessThan(WINDOW_MS)
    expect(searchEnded()).toBeGreaterThan(0)
    expect(searchEnded()).toBeLessThanOrEqual(awardedAt)
  })

  it('an agent whose offer could not be sent at first tries again, and its offer counts', async () => {
    net = createMemoryJobNetwork()
    const one = await agent({ platforms: ['linux/amd64'] })
    const late = await agent({ platforms: ['linux/amd64'], failedSends: 2 })
    const { r } = await requester([one, late])
    const events: JobEvent[] = []
    const out = await r.submit(spec(['linux/amd64'], { verify: 2, onEvent: e => events.push(e) }))
    expect([...out.platforms[0]?.builders ?? []].sort()).toEqual([id(one.key), id(late.key)].sort())
    expect(events.filter(e => e.kind === 'offer').map(e => e.kind === 'offer' ? e.builder : '')).toContain(id(late.key))
  })

  it('ignores the declines a directly-sent agent gives for platforms it does not build', async () => {
    net = createMemoryJobNetwork()
    const amd = await agent({ platforms: ['linux/amd64'], far: true })
    const arm = await agent({ platforms: ['linux/arm64'] })
    const { r } = await requester([amd, arm])
    const events: JobEvent[] = []
    const out = await r.submit(spec(['linux/amd64', 'linux/arm64'], { onEvent: e => events.push(e) }))
    expect(out.platforms.map(p => p.builders)).toEqual([[id(amd.key)], [id(arm.key)]])
    expect(events.filter(e => e.kind === 'decline')).toEqual([])
  })

  it('sends the next job at once to the agents an earlier search found, without waiting for its own search', async () => {
    net = createMemoryJobNetwork()
    const near = await agent({ platforms: ['linux/amd64'] })
    const far = await agent({ platforms: ['linux/amd64'], far: true })
    const gone = await agent({ platforms: ['linux/amd64'], far: true })
    // The first job's search finds the far agents; the second job's search finds nothing and does not end by itself.
    const { r, searches, searchEnded } = await requester([near, far, gone], { finding: 1 })
    const first = await r.submit(spec(['linux/amd64'], { verify: 3 }))
    expect([...first.platforms[0]?.builders ?? []].sort()).toEqual([id(near.key), id(far.key), id(gone.key)].sort())
    // An agent known from the first search that is gone since: its send fails and nobody waits for it.
    net.disconnect(id(gone.key))
    const events: JobEvent[] = []
    let awardedAt = 0
    const started = Date.now()
    const second = await r.submit(spec(['linux/amd64'], { verify: 2, onEvent: e => { events.push(e); if (e.kind === 'award' && awardedAt === 0) awardedAt = Date.now() } }))
    // Every search after the first found nobody: the far agent had the job from the first search's finding.
    expect(searches.length).toBeGreaterThanOrEqual(2)
    expect([...second.platforms[0]?.builders ?? []].sort()).toEqual([id(near.key), id(far.key)].sort())
    // Both answered before the window's end, and the award ended the second search: it found nobody.
    expect(awardedAt - started).toBeLessThan(WINDOW_MS)
    expect(searchEnded()).toBeGreaterThan(0)
    expect(events.filter(e => e.kind === 'offer').map(e => e.kind === 'offer' ? e.builder : '').sort()).toEqual([id(near.key), id(far.key)].sort())
  })

  it('discover() ahead of a submit finds the agents, and the job goes to them at once', async () => {
    net = createMemoryJobNetwork()
    const far = await agent({ platforms: ['linux/arm64'], capabilities: ['gpu'], far: true })
    const other = await agent({ platforms: ['linux/amd64'], far: true })
    const { r, searches } = await requester([far, other], { finding: 1 })
    expect(await r.discover({ platforms: ['linux/arm64'], requirements: ['gpu'] })).toBe(1)
    expect(searches).toEqual(['linux/arm64 gpu'])
    let awardedAt = 0
    const started = Date.now()
    const out = await r.submit(spec(['linux/arm64'], { requirements: ['gpu'], onEvent: e => { if (e.kind === 'award' && awardedAt === 0) awardedAt = Date.now() } }))
    expect(out.platforms[0]?.builders).toEqual([id(far.key)])
    expect(awardedAt - started).toBeLessThan(WINDOW_MS)
  })

  it('says nobody advertises a platform that no agent builds', async () => {
    net = createMemoryJobNetwork()
    const amd = await agent({ platforms: ['linux/amd64'] })
    const { r } = await requester([amd])
    const started = Date.now()
    await expect(r.submit(spec(['linux/riscv64']))).rejects.toMatchObject({ name: 'NoOffersError', message: expect.stringMatching(/\(0 offer\(s\), 1 needed\); nobody advertises linux\/riscv64$/) })
    expect(Date.now() - started).toBeGreaterThanOrEqual(WINDOW_MS - 50)
  })
})
