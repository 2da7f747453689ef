/**
 * The agent shares its build cache over the network: agent A builds a job
 * with the real rootless builder and publishes its step-cache records; agent
 * B, which trusts A as a builder, builds the same recipe without running a
 * single step itself and gets the same digest; agent C, which trusts no
 * builder, runs every step.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { describe, expect, it } from 'vitest'
import { detectCapabilities } from '../../../agent/capabilities.ts'
import { startAgent } from '../../../agent/runtime.ts'
import type { Agent } from '../../../agent/runtime.ts'
import type { LocalStore } from '../../../src/content/index.ts'
import { PolicyConfig, createTrustPolicy, issueCertificate } from '../../../src/trust/index.ts'
import { cleanups, collectingLogger, connect, dir, id, node, open, requester, rootA, subscribed, tmp } from './harness.ts'

const RECIPE = 'FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /srv/b.txt\nLABEL kiln.test=network-cache\n'

async function realAgent (name: string, key: Ed25519PrivateKey, requesterId: string, trustedBuilders: string[], log: string[] = []): Promise<{ agent: Agent, store: LocalStore }> {
  const store = await open(name)
  const cert = await issueCertificate(rootA, { subject: id(key), roles: ['builder'], institution: 'uni-a' })
  const agent = await startAgent({
    node: await node(key),
    privateKey: key,
    store: store.content,
    provideStore: false,
    log: collectingLogger(log),
    describe: async () => await detectCapabilities({ platforms: ['linux/amd64'], dataDir: store.root }),
    jobs: {
      db: store.db,
      refs: store.refs,
      dataDir: store.root,
      policy: createTrustPolicy(PolicyConfig.parse({
        version: 1,
        peers: [{ peer: requesterId, roles: ['requester'] }, ...trustedBuilders.map(peer => ({ peer, roles: ['builder'] }))]
      })),
      certs: [cert],
      platforms: ['linux/amd64'],
      heartbeatMs: 250
    }
  })
  cleanups.push(async () => { await agent.stop() })
  return { agent, store }
}

describe('the build cache shared by agents over the network', () => {
  it('a trusting agent builds from another agent\'s published steps; an untrusting one runs them', { timeout: 180_000 }, async () => {
    await tmp()
    const ctxDir = join(dir, 'ctx')
    mkdirSync(ctxDir, { recursive: true })
    writeFileSync(join(ctxDir, 'a.txt'), `a ${Math.random()}\n`)
    writeFileSync(join(ctxDir, 'b.txt'), `b ${Math.random()}\n`)
    writeFileSync(join(ctxDir, 'Dockerfile'), RECIPE)

    const reqKey = await generateKeyPair('Ed25519')
    const { session, node: rn } = await requester(reqKey, await open('requester'))
    const [ka, kb, kc] = await Promise.all([generateKeyPair('Ed25519'), generateKeyPair('Ed25519'), generateKeyPair('Ed25519')])
    const aLog: string[] = []
    const a = await realAgent('a', ka, id(reqKey), [], aLog)
    const b = await realAgent('b', kb, id(reqKey), [id(ka)])
    const c = await realAgent('c', kc, id(reqKey), [])
    await connect(rn, a.agent.node, b.agent.node, c.agent.node)
    await connect(a.agent.node, b.agent.node, c.agent.node)
    await subscribed(rn, 3)
    const context = await session.shareContext(ctxDir)
    const recipe = { kind: 'dockerfile' as const, file: 'Dockerfile', text: RECIPE }
    const submit = async (to: Ed25519PrivateKey): Promise<{ digest: string, cachedSteps?: number, steps?: number }> => {
      const out = await session.requester.submit({ recipe, context, platforms: ['linux/amd64'], to: [id(to)] })
      const p = out.platforms[0]
      expect(p?.builders).toEqual([id(to)])
      const stored = session.journal.get(out.jobId)?.platforms[0]
      return { digest: p?.digest ?? '', ...(stored?.cachedSteps !== undefined ? { cachedSteps: stored.cachedSteps } : {}), ...(stored?.steps !== undefined ? { steps: stored.steps } : {}) }
    }

    const first = await submit(ka)
    expect(first.cachedSteps).toBe(0)
    // A's records are on the DHT once its background publication is done.
    await expect.poll(() => aLog.find(l => l.includes('build cache records published')), { timeout: 60_000, interval: 200 }).toMatch(/"published":[1-9]/)

    const second = await submit(kb)
    expect(second.digest).toBe(first.digest)
    expect(second.cachedSteps).toBe(second.steps)

    const third = await submit(kc)
    expect(third.digest).toBe(first.digest)
    expect(third.cachedSteps).toBe(0)
  })
})
