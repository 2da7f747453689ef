/**
 * Job benchmark, two figures (docs/jobs.md, 'Benchmarks'):
 *
 * 1. Submit to award with 50 agents in this one process, real libp2p on
 *    loopback (each agent its own node, store and journal, certified by a
 *    root the requester trusts; a fake builder, so jobs end at once).
 *    Time from `submit()` to the award event, over KILN_BENCH_JOBS jobs
 *    (default 30): p50, p95, max. Goal: p95 < 250 ms.
 * 2. A remote build against a local one: `kiln agent` in its own process,
 *    `kiln submit` of a recipe (busybox base, COPY of 1 MiB of fresh data,
 *    RUN) against `kiln build` of the same recipe, each a fresh context so
 *    that no step comes from a cache; wall time of the whole command.
 *    Prints medians, the overhead (submit - build) and its ratio. Goal:
 *    overhead < 1 s plus transfer time.
 *
 * Run: npm run bench -- jobs     (KILN_BENCH_AGENTS, KILN_BENCH_JOBS, KILN_BENCH_BUILDS to change the sizes)
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { startAgent } from '../../agent/runtime.ts'
import type { Agent } from '../../agent/runtime.ts'
import { detectCapabilities } from '../../agent/capabilities.ts'
import type { JobBuilder } from '../../agent/jobs/index.ts'
import { openLocalStore } from '../../src/content/index.ts'
import type { LocalStore } from '../../src/content/index.ts'
import { createKilnNode } from '../../src/p2p/index.ts'
import { startRequesterSession } from '../../src/requester/index.ts'
import { PolicyConfig, createTrustPolicy, issueCertificate } from '../../src/trust/index.ts'

const REPO = resolve(import.meta.dirname, '../..')
const BENCH = resolve(REPO, '../shared/bench')
const AGENTS = Number(process.env.KILN_BENCH_AGENTS ?? 50)
const JOBS = Number(process.env.KILN_BENCH_JOBS ?? 30)
const BUILDS = Number(process.env.KILN_BENCH_BUILDS ?? 5)
const LOOPBACK = ['/ip4/127.0.0.1/tcp/0']

const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil(p / 100 * s.length) - 1)] as number
}
const median = (xs: number[]): number => percentile(xs, 50)

/** An image of one tiny layer, written into the agent's store: the build costs nothing, the protocol is what is measured. */
function instantBuilder (store: LocalStore): JobBuilder {
  const enc = new TextEncoder()
  return {
    build: async (req) => {
      const layer = await store.content.ingest(enc.encode(`layer ${req.platform} ${req.recipe.digest}`))
      const config = await store.content.ingest(enc.encode(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } })))
      const manifest = await store.content.ingest(enc.encode(JSON.stringify({
        schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }]
      })))
      return { ...manifest, mediaType: 'application/vnd.oci.image.manifest.v1+json', blobs: [config, layer], baseDigests: [], steps: 1, cachedSteps: 0 }
    }
  }
}

async function submitToAward (dir: string): Promise<void> {
  const root = await generateKeyPair('Ed25519')
  const reqKey = await generateKeyPair('Ed25519')
  const reqId = peerIdFromPrivateKey(reqKey).toString()
  const stores: LocalStore[] = []
  const agents: Agent[] = []
  const reqNode = await createKilnNode({ privateKey: reqKey, listen: LOOPBACK, mdns: false })
  const reqStore = await openLocalStore(join(dir, 'requester'))
  stores.push(reqStore)
  try {
    const t0 = performance.now()
    const description = await detectCapabilities({ platforms: ['linux/amd64'], dataDir: dir })
    for (let i = 0; i < AGENTS; i++) {
      const key = await generateKeyPair('Ed25519')
      const store = await openLocalStore(join(dir, `agent-${i}`))
      stores.push(store)
      // As if each agent were its own host: its own loopback address, and a DHT client, so that the 50
      // agents do not all dial each other from 127.0.0.1 (gossipsub's peer score penalises more than 10
      // peers on one IP until it stops publishing to them: that would measure the score, not kiln).
      const node = await createKilnNode({ privateKey: key, listen: [`/ip4/127.0.${1 + Math.floor(i / 250)}.${2 + i % 250}/tcp/0`], mdns: false, dht: { clientMode: true } })
      agents.push(await startAgent({
        node, privateKey: key, store: store.content, provideStore: false,
        describe: () => description,
        jobs: {
          db: store.db, refs: store.refs, dataDir: store.root, platforms: ['linux/amd64'], builder: instantBuilder(store),
          policy: createTrustPolicy(PolicyConfig.parse({ version: 1, peers: [{ peer: reqId, roles: ['requester'] }] })),
          certs: [await issueCertificate(root, { subject: peerIdFromPrivateKey(key).toString(), roles: ['builder'], institution: 'bench' })]
        }
      }))
      // Under load a dial's handshake may time out: try again (bounded).
      for (let attempt = 1; ; attempt++) {
        try { await reqNode.dial(node.getMultiaddrs()[0]!); break } catch (err) { if (attempt === 3) throw err }
      }
    }
    const session = await startRequesterSession({
      node: reqNode, key: reqKey, store: reqStore,
      policy: createTrustPolicy(PolicyConfig.parse({ version: 1, roots: [{ key: peerIdFromPrivateKey(root).toString(), roles: ['builder'] }] }))
    })
    const deadline = Date.now() + 60_000
    while (reqNode.services.pubsub.getSubscribers('kiln/jobs/v1/linux/amd64').length < AGENTS && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
    console.log(`${AGENTS} agents up and subscribed in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
    const ctxDir = join(dir, 'ctx')
    mkdirSync(ctxDir)
    writeFileSync(join(ctxDir, 'Dockerfile'), 'FROM scratch\n')
    const context = await session.shareContext(ctxDir)
    const awardMs: number[] = []
    const offers: number[] = []
    for (let j = 0; j < JOBS + 1; j++) {
      const start = performance.now()
      let awarded = 0
      let heard = 0
      await session.requester.submit({
        recipe: { kind: 'dockerfile', file: 'Dockerfile', text: `FROM scratch\n# job ${j}\n` }, context, platforms: ['linux/amd64'],
        onEvent: e => {
          if (e.kind === 'offer') heard++
          if (e.kind === 'award' && awarded === 0) awarded = performance.now() - start
        }
      })
      // The first job warms connections and caches: not counted.
      if (j > 0) { awardMs.push(awarded); offers.push(heard) }
    }
    console.log(`submit -> award, ${AGENTS} agents, ${JOBS} jobs: p50 ${median(awardMs).toFixed(0)} ms, p95 ${percentile(awardMs, 95).toFixed(0)} ms, max ${Math.max(...awardMs).toFixed(0)} ms (goal p95 < 250 ms: ${percentile(awardMs, 95) < 250 ? 'met' : 'NOT met'}); offers heard before the award: median ${median(offers)} of ${AGENTS}`)
    await session.stop()
  } finally {
    await Promise.allSettled(agents.map(async a => { await a.stop() }))
    await reqNode.stop()
    for (const s of stores) s.close()
  }
}

function kilnSync (dataDir: string, args: string[]): string {
  const r = spawnSync(join(REPO, 'node_modules/.bin/node'), [join(REPO, 'src/cli/kiln.mjs'), ...args], { env: { ...process.env, KILN_DATA_DIR: dataDir }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  if (r.status !== 0) throw new Error(`kiln ${args.join(' ')} exited ${String(r.status)}: ${r.stderr.slice(-2000)}`)
  return r.stdout
}

/** Runs `kiln ARGS`; returns its wall time, and when its result (the first stdout with --json) came out. */
async function timedKiln (dataDir: string, args: string[]): Promise<{ ms: number, resultMs: number, stdout: string }> {
  const t0 = performance.now()
  const child = spawn(join(REPO, 'node_modules/.bin/node'), [join(REPO, 'src/cli/kiln.mjs'), ...args], { env: { ...process.env, KILN_DATA_DIR: dataDir }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  let resultMs = 0
  child.stdout.on('data', (d: Buffer) => { if (resultMs === 0) resultMs = performance.now() - t0; stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
  if (code !== 0) throw new Error(`kiln ${args.join(' ')} exited ${String(code)}: ${stderr.slice(-2000)}`)
  return { ms: performance.now() - t0, resultMs, stdout }
}

async function remoteOverLocal (dir: string): Promise<void> {
  const layout = join(dir, 'busybox')
  execFileSync('sh', [join(BENCH, 'make-busybox-base.sh'), layout], { stdio: 'ignore' })
  const [local, agentDir, reqDir] = ['local', 'agent', 'requester'].map(n => join(dir, n)) as [string, string, string]
  for (const d of [local, agentDir]) kilnSync(d, ['image', 'import', `oci:${layout}:base`, '-t', 'bench/busybox:base'])
  const peer = (d: string): string => (JSON.parse(kilnSync(d, ['key', 'show', '--json'])) as { peerId: string }).peerId
  kilnSync(agentDir, ['trust', 'add-peer', peer(reqDir), '--roles', 'requester'])
  kilnSync(reqDir, ['trust', 'add-peer', peer(agentDir), '--roles', 'builder'])
  const agent = spawn(join(REPO, 'node_modules/.bin/node'), [join(REPO, 'src/cli/kiln.mjs'), 'agent', '--listen', LOOPBACK[0] as string, '--no-mdns', '--platform', 'linux/amd64', '--log-level', 'warn'], {
    env: { ...process.env, KILN_DATA_DIR: agentDir }, stdio: ['ignore', 'pipe', 'inherit']
  })
  try {
    const addr = await new Promise<string>((resolve, reject) => {
      createInterface({ input: agent.stdout }).on('line', l => { const m = /listening: (\/ip4\/127\.0\.0\.1\/\S+)/.exec(l); if (m !== null) resolve(m[1] as string) })
      agent.once('exit', code => { reject(new Error(`kiln agent exited ${String(code)}`)) })
    })
    const context = (i: number): string => {
      const c = join(dir, `ctx-${i}`)
      mkdirSync(c)
      writeFileSync(join(c, 'Dockerfile'), 'FROM bench/busybox:base\nCOPY data /data\nRUN wc -c /data > /size\n')
      writeFileSync(join(c, 'data'), randomBytes(1024 * 1024))
      return c
    }
    const localMs: number[] = []
    const remoteMs: number[] = []
    const remoteResultMs: number[] = []
    const agentBuildMs: number[] = []
    for (let i = 0; i < BUILDS + 1; i++) {
      const l = await timedKiln(local, ['build', '-t', `bench/local:${i}`, context(2 * i)])
      const r = await timedKiln(reqDir, ['submit', '--platform', 'linux/amd64', '-t', `bench/remote:${i}`, '--bootstrap', addr, '--listen', LOOPBACK[0] as string, '--no-mdns', '--json', context(2 * i + 1)])
      // The first round warms the page cache and Node's compile cache: not counted.
      if (i === 0) continue
      localMs.push(l.ms)
      remoteMs.push(r.ms)
      remoteResultMs.push(r.resultMs)
      agentBuildMs.push((JSON.parse(r.stdout) as { platforms: Array<{ buildMs: number }> }).platforms[0]?.buildMs ?? 0)
    }
    const overhead = median(remoteMs) - median(localMs)
    console.log(`kiln build (local)   median ${(median(localMs) / 1000).toFixed(2)} s over ${BUILDS}`)
    console.log(`kiln submit (remote) median ${(median(remoteMs) / 1000).toFixed(2)} s to exit, ${(median(remoteResultMs) / 1000).toFixed(2)} s to its result (the agent's build: ${(median(agentBuildMs) / 1000).toFixed(2)} s)`)
    const toResult = median(remoteResultMs) - median(localMs)
    console.log(`remote/local ${(median(remoteMs) / median(localMs)).toFixed(2)}x; overhead ${(overhead / 1000).toFixed(2)} s to exit, ${(toResult / 1000).toFixed(2)} s to the result (goal < 1 s plus transfer time of a 1 MiB context and the image on loopback: ${toResult < 1000 ? 'met' : 'NOT met'} to the result, ${overhead < 1000 ? 'met' : 'NOT met'} to exit)`)
  } finally {
    agent.kill('SIGTERM')
    await new Promise(resolve => agent.once('exit', resolve))
  }
}

const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-jobs-'))
try {
  await submitToAward(dir)
  await remoteOverLocal(dir)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
