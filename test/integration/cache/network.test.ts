/**
 * The build cache over the peer network (protocols/cache.md), three
 * builders on loopback in one process, each with its own empty store: A
 * builds the reference recipe and publishes its step-cache records (signed,
 * on the DHT) and layers; B, trusting A as a builder, builds the same
 * recipe and runs no RUN step, to the same digest; C, trusting nobody, sees
 * A's records, ignores them and runs every step.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createBuilder } from '../../../src/builder/index.ts'
import type { BuildResult } from '../../../src/builder/index.ts'
import { openLocalStore } from '../../../src/content/index.ts'
import type { LocalStore } from '../../../src/content/index.ts'
import { createNetworkCache } from '../../../src/cache/index.ts'
import type { NetworkCache } from '../../../src/cache/index.ts'
import { createKilnNode } from '../../../src/p2p/index.ts'
import type { KilnNode } from '../../../src/p2p/index.ts'
import { parseRecipe } from '../../../src/recipe/index.ts'
import { createTransfer } from '../../../src/transfer/index.ts'
import type { Transfer } from '../../../src/transfer/index.ts'
import { createTrustPolicy, PolicyConfig } from '../../../src/trust/index.ts'
import { haveTools } from '../../helpers/tools.ts'
import { haveBench, makeReferenceRecipe } from '../../e2e/export/reference-recipe.ts'
import type { ReferenceRecipe } from '../../e2e/export/reference-recipe.ts'

interface Agent {
  key: PrivateKey
  node: KilnNode
  local: LocalStore
  transfer: Transfer
  cache: NetworkCache
  dir: string
  skipped: string[]
}

describe.skipIf(!haveBench() || !haveTools('busybox', 'umoci', 'mknod'))('build cache records on the DHT', () => {
  let work: string
  let recipe: ReferenceRecipe
  const agents: Agent[] = []

  const start = async (name: string, trusted: () => string[]): Promise<Agent> => {
    const key = await generateKeyPair('Ed25519')
    const node = await createKilnNode({ privateKey: key, listen: ['/ip4/127.0.0.1/tcp/0'], dht: { initialQuerySelfInterval: 200 } })
    const dir = join(work, name)
    const local = await openLocalStore(dir)
    const transfer = createTransfer({ node, store: local.content })
    await transfer.start()
    const skipped: string[] = []
    // The policy is read when a lookup happens, so an agent can trust one started later.
    const trust = { allows: async (peer: string, role: 'builder', certs?: readonly unknown[]) => await createTrustPolicy(PolicyConfig.parse({ version: 1, peers: trusted().map(p => ({ peer: p, roles: ['builder'] })) })).allows(peer, role, certs) }
    const cache = createNetworkCache({
      node, privateKey: key, store: local.content, db: local.db, transfer, trust,
      log: (_level, message) => { if (message.includes('ignored')) skipped.push(message) }
    })
    const agent = { key, node, local, transfer, cache, dir, skipped }
    agents.push(agent)
    return agent
  }

  const build = async (a: Agent): Promise<BuildResult> => {
    const plan = parseRecipe(readFileSync(join(recipe.context, 'Dockerfile'), 'utf8'), { filename: 'Dockerfile', buildArgs: recipe.buildArgs })
    const builder = createBuilder({ store: a.local.content, db: a.local.db, refs: a.local.refs, workDir: join(a.dir, 'build'), remoteCache: a.cache.remoteCache })
    return await builder.build(plan, { contextDir: recipe.context, signal: AbortSignal.timeout(240_000) })
  }
  const runs = (r: BuildResult): boolean[] => r.steps.filter(s => s.op === 'run').map(s => s.cached)

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'kiln-netcache-'))
    recipe = makeReferenceRecipe(work)
  }, 120_000)
  afterAll(async () => {
    for (const a of agents) {
      await a.transfer.stop().catch(() => {})
      await a.node.stop()
      a.local.close()
    }
    if (work !== undefined) rmSync(work, { recursive: true, force: true })
  })

  it('B (trusting A) runs no RUN step and gets A\'s digest; C (trusting nobody) runs every step', async () => {
    const a = await start('a', () => [])
    const b = await start('b', () => [a.node.peerId.toString()])
    const c = await start('c', () => [])
    for (const [x, y] of [[b, a], [c, a], [c, b]] as const) await x.node.dial(y.node.getMultiaddrs()[0]!)

    const built = await build(a)
    expect(runs(built)).toEqual([false, false, false])
    const published = await a.cache.publish({ image: built.descriptor, signal: AbortSignal.timeout(60_000) })
    expect(published.published).toBe(4) // three RUN layers and the COPY
    expect(published.storedOn).toBeGreaterThan(0)
    expect((await a.cache.publish()).published).toBe(0) // nothing new

    const fromA = await build(b)
    expect(runs(fromA)).toEqual([true, true, true])
    expect(fromA.steps.every(s => s.cached)).toBe(true)
    expect(fromA.digest).toBe(built.digest)
    expect(b.skipped).toEqual([])

    const alone = await build(c)
    expect(runs(alone)).toEqual([false, false, false])
    expect(alone.digest).toBe(built.digest)
    // C saw A's record for the first filesystem step and refused it; after that miss it asked no more in the stage.
    expect(c.skipped).toHaveLength(1)
    expect(c.skipped[0]).toContain(a.node.peerId.toString())
  }, 400_000)
})
