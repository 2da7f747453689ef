/**
 * Shared set-up of the job integration tests over real libp2p nodes on
 * loopback (one process): institutions' root keys, agents with a fake
 * builder that writes a real image into their store, requester sessions,
 * temp dirs; everything made here is stopped and removed after each test.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, beforeAll, expect } from 'vitest'
import { startAgent } from '../../../agent/runtime.ts'
import type { Agent } from '../../../agent/runtime.ts'
import { detectCapabilities } from '../../../agent/capabilities.ts'
import type { BuildOutput, JobBuilder } from '../../../agent/jobs/index.ts'
import { openLocalStore } from '../../../src/content/index.ts'
import type { ContentStore, LocalStore } from '../../../src/content/index.ts'
import { createKilnNode } from '../../../src/p2p/index.ts'
import type { KilnNode } from '../../../src/p2p/index.ts'
import { startRequesterSession } from '../../../src/requester/index.ts'
import type { RequesterSession } from '../../../src/requester/index.ts'
import { PolicyConfig, createTrustPolicy, issueCertificate } from '../../../src/trust/index.ts'
import type { Ed25519PrivateKey, TrustPolicy } from '../../../src/trust/index.ts'
import type { Logger } from 'pino'

export const enc = new TextEncoder()
export const id = (k: Ed25519PrivateKey): string => peerIdFromPrivateKey(k).toString()

/**
 * Builds a one-layer image whose layer is the context's `input.txt` (so the
 * test sees that the context travelled). `mode`: 'honest', 'slow' (waits
 * for abort or 3 s), 'unlisted' (omits its layer from the result: a lie),
 * 'salted' (slow, and its layer names the agent: each agent builds a different image),
 * 'stuck' (never finishes: waits for abort).
 */
export type Mode = 'honest' | 'slow' | 'unlisted' | 'salted' | 'stuck'

export function fakeBuilder (store: ContentStore, mode: Mode = 'honest', salt = ''): JobBuilder & { builds: number } {
  const b = {
    builds: 0,
    async build (req: Parameters<JobBuilder['build']>[0], o: Parameters<JobBuilder['build']>[1]): Promise<BuildOutput> {
      b.builds++
      o.onProgress(1, 1, 'RUN fake')
      const input = await readFile(join(req.contextDir, 'input.txt'), 'utf8')
      o.onLog(`context says ${input.trim()}`)
      if (mode === 'slow' || mode === 'salted' || mode === 'stuck') {
        await new Promise<void>((resolve, reject) => {
          if (o.signal.aborted) { reject(o.signal.reason as Error); return }
          const t = mode === 'stuck' ? undefined : setTimeout(resolve, 3000)
          o.signal.addEventListener('abort', () => { clearTimeout(t); reject(o.signal.reason as Error) }, { once: true })
        })
      }
      const layer = await store.ingest(enc.encode(`layer for ${req.platform}: ${input}${mode === 'salted' ? salt : ''}`))
      const config = await store.ingest(enc.encode(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } })))
      const manifest = await store.ingest(enc.encode(JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }]
      })))
      return {
        ...manifest,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        blobs: mode === 'unlisted' ? [config] : [config, layer],
        baseDigests: [],
        sandbox: 'fake',
        cachedSteps: 0,
        steps: 1
      }
    }
  }
  return b
}

export let rootA: Ed25519PrivateKey
export let rootB: Ed25519PrivateKey
export let dir: string
export const cleanups: Array<() => Promise<void>> = []

beforeAll(async () => {
  rootA = await generateKeyPair('Ed25519')
  rootB = await generateKeyPair('Ed25519')
})
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
})

export async function tmp (): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'kiln-jobs-p2p-'))
  cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

export async function node (key: Ed25519PrivateKey): Promise<KilnNode> {
  const n = await createKilnNode({ privateKey: key, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false })
  cleanups.push(async () => { await n.stop() })
  return n
}

export async function open (name: string): Promise<LocalStore> {
  const s = await openLocalStore(join(dir, name))
  cleanups.push(async () => { s.close() })
  return s
}

export interface TestAgent { agent: Agent, store: LocalStore, builder: JobBuilder & { builds: number }, key: Ed25519PrivateKey }

export interface AgentOptions {
  platform?: string
  /** Restart an agent: the same key and store (journal, replay cache). */
  key?: Ed25519PrivateKey
  store?: LocalStore
  /** Collects the agent's log lines. */
  log?: string[]
  /** Dial this node before the agent starts (so what a restarted agent sends at start reaches it). */
  dialFirst?: KilnNode
}

/** A pino-like logger that keeps the messages, for asserting on reasons. */
export function collectingLogger (lines: string[]): Logger {
  const put = (...args: unknown[]): void => { lines.push(args.map(a => typeof a === 'string' ? a : JSON.stringify(a)).join(' ')) }
  const l = { child: () => l, trace: put, debug: put, info: put, warn: put, error: put, fatal: put }
  return l as unknown as Logger
}

export async function agent (name: string, root: Ed25519PrivateKey, requester: string, mode: Mode = 'honest', opts: AgentOptions = {}): Promise<TestAgent> {
  const key = opts.key ?? await generateKeyPair('Ed25519')
  const store = opts.store ?? await open(name)
  const platform = opts.platform ?? 'linux/amd64'
  const builder = fakeBuilder(store.content, mode, name)
  const cert = await issueCertificate(root, { subject: id(key), roles: ['builder'], institution: root === rootA ? 'uni-a' : 'uni-b' })
  const n = await node(key)
  if (opts.dialFirst !== undefined) await n.dial(opts.dialFirst.getMultiaddrs()[0]!)
  const a = await startAgent({
    node: n,
    privateKey: key,
    store: store.content,
    provideStore: false,
    ...(opts.log !== undefined ? { log: collectingLogger(opts.log) } : {}),
    describe: async () => await detectCapabilities({ platforms: [platform], dataDir: store.root }),
    jobs: {
      db: store.db,
      refs: store.refs,
      dataDir: store.root,
      policy: createTrustPolicy(PolicyConfig.parse({ version: 1, peers: [{ peer: requester, roles: ['requester'] }] })),
      certs: [cert],
      platforms: [platform],
      builder,
      heartbeatMs: 250
    }
  })
  cleanups.push(async () => { await a.stop() })
  return { agent: a, store, builder, key }
}

export async function requester (key: Ed25519PrivateKey, store: LocalStore, opts: { heartbeatMs?: number, policy?: TrustPolicy } = {}): Promise<{ session: RequesterSession, node: KilnNode, warnings: string[] }> {
  const n = await node(key)
  const warnings: string[] = []
  const session = await startRequesterSession({
    node: n, key, store, log: (_level, message) => { warnings.push(message) },
    policy: opts.policy ?? createTrustPolicy(PolicyConfig.parse({ version: 1, roots: [{ key: id(rootA), roles: ['builder'] }] })),
    offerWindowMs: 1500,
    heartbeatMs: opts.heartbeatMs ?? 250
  })
  cleanups.push(async () => { await session.stop() })
  return { session, node: n, warnings }
}

export async function connect (from: KilnNode, ...to: KilnNode[]): Promise<void> {
  for (const t of to) await from.dial(t.getMultiaddrs()[0]!)
}

/** Waits (event-driven, bounded) until every agent's job topic subscription is known to the node. */
export async function subscribed (n: KilnNode, count: number, platform = 'linux/amd64'): Promise<void> {
  await expect.poll(() => n.services.pubsub.getSubscribers(`kiln/jobs/v1/${platform}`).length, { timeout: 20_000, interval: 50 }).toBeGreaterThanOrEqual(count)
}

export function context (): string {
  const c = join(dir, 'ctx')
  mkdirSync(c, { recursive: true })
  writeFileSync(join(c, 'input.txt'), `hello ${Math.random()}\n`)
  writeFileSync(join(c, 'Dockerfile'), 'FROM scratch\nCOPY input.txt /\n')
  return c
}

export const recipe = { kind: 'dockerfile' as const, file: 'Dockerfile', text: 'FROM scratch\nCOPY input.txt /\n' }

