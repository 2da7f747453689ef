/**
 * A requester session on a data dir (what `kiln submit` and `kiln jobs
 * cancel|resume` open): the trust policy and certificates, a client node on
 * free ports, and `startRequesterSession` (src/requester) on it, once a peer
 * is reachable; and the signed tag records of its results (`kiln submit -t`).
 * `attachRequester` opens the same session on a node another service of the
 * process runs (the gateway's network builds: `kiln up`'s agent node, or
 * `kiln gateway`'s own), with that node's transfer and job transport.
 */
import type { PrivateKey } from '@libp2p/interface'
import type { Logger } from 'pino'
import type { KilnConfig } from '../config/index.ts'
import type { LocalStore } from '../content/index.ts'
import type { Identity } from '../p2p/identity.ts'
import type { JobTransport } from '../jobs/index.ts'
import type { KilnNode, NodeFlags } from '../p2p/index.ts'
import type { RequesterSession, RequesterSessionInit } from '../requester/index.ts'
import type { Transfer } from '../transfer/index.ts'
import type { TrustPolicy } from '../trust/index.ts'
import { startPeer, untilFirstPeer } from './peer.ts'

/** How long a session waits for its first peer before NoPeerReachableError. */
export const FIRST_PEER_TIMEOUT_MS = 15_000

export interface RequesterNodeInit {
  config: KilnConfig
  store: LocalStore
  identity: Identity
  log: Logger
  network: NodeFlags
  offerWindowMs?: number
  /** Told when the trust policy names no builder, so that every offer will be refused. */
  warn?: (message: string) => void
  /** Blobs fetched from the network (RequesterSessionInit.onFetchProgress, src/requester). */
  onFetchProgress?: RequesterSessionInit['onFetchProgress']
}

/** One tag record a requester published for a result. */
export interface PublishedTagName {
  repository: string
  tag: string
  /** Peers that stored the record; 0: only this node has it, and it is leaving. */
  storedOn: number
}

export interface RequesterNode {
  readonly session: RequesterSession
  readonly node: KilnNode
  /**
   * Signs and publishes a tag record for each name (protocols/tag.md), with
   * this node's certificates, so that gateways whose policy trusts this
   * requester as a builder or gateway resolve the name. Rejects with the
   * DHT's error; a name no peer stored comes back with storedOn 0.
   */
  publishTags: (image: { digest: string, mediaType: string, size: number }, names: ReadonlyArray<{ repository: string, tag: string }>, signal?: AbortSignal) => Promise<PublishedTagName[]>
  /** Stops the session, then the node. Safe to call twice. */
  close: () => Promise<void>
}

export async function openRequesterNode (init: RequesterNodeInit): Promise<RequesterNode> {
  const { loadTrustPolicy, loadCertificates } = await import('../trust/index.ts')
  const { config, store, identity } = init
  const log = init.log.child({ component: 'requester' })
  const self = identity.peerId.toString()
  const policy = await loadTrustPolicy(store.root, { self, config: config.trust })
  if (!policy.config.open && policy.config.roots.every(r => !r.roles.includes('builder')) && policy.config.peers.every(p => !p.roles.includes('builder'))) {
    init.warn?.('the trust policy names no builder: every offer will be refused (kiln trust add-root FILE --roles builder)')
  }
  const certs = await loadCertificates(store.root, self, (file, reason) => { log.warn({ file, reason }, 'certificate skipped') })
  const node = await startPeer(config.node, init.network, identity.privateKey, true)
  let opened: RequesterNode
  try {
    opened = await openOn({ node, store, key: identity.privateKey, log, policy, certs, ...(init.offerWindowMs !== undefined ? { offerWindowMs: init.offerWindowMs } : {}), ...(init.onFetchProgress !== undefined ? { onFetchProgress: init.onFetchProgress } : {}) }, async () => { await untilFirstPeer(node, FIRST_PEER_TIMEOUT_MS) })
  } catch (err) {
    await node.stop()
    throw err
  }
  let closing: Promise<void> | undefined
  return {
    ...opened,
    close: async () => {
      closing ??= (async () => {
        await opened.close()
        await node.stop()
      })()
      await closing
    }
  }
}

export interface AttachedRequesterInit {
  store: LocalStore
  log: Logger
  /** The running node, its key, its blob transfer, and its job transport when a service of the process has one (an agent's). */
  network: { node: KilnNode, privateKey: PrivateKey, transfer: Transfer, transport?: JobTransport }
  /** The process's live trust: whose offers count, and the certificates presented. */
  trust: { policy: TrustPolicy, certs: unknown[] }
  offerWindowMs?: number
}

/**
 * A requester session on a node that runs already; `close` stops the
 * session only (its own job transport, when it made one), never the node
 * nor a shared transfer or transport.
 */
export async function attachRequester (init: AttachedRequesterInit): Promise<RequesterNode> {
  const log = init.log.child({ component: 'requester' })
  return await openOn({
    node: init.network.node,
    store: init.store,
    key: init.network.privateKey,
    log,
    policy: init.trust.policy,
    certs: init.trust.certs,
    shared: { transfer: init.network.transfer, ...(init.network.transport !== undefined ? { transport: init.network.transport } : {}) },
    ...(init.offerWindowMs !== undefined ? { offerWindowMs: init.offerWindowMs } : {})
  })
}

interface SessionOn {
  node: KilnNode
  store: LocalStore
  key: PrivateKey
  log: Logger
  policy: TrustPolicy
  certs: unknown[]
  shared?: { transfer: Transfer, transport?: JobTransport }
  offerWindowMs?: number
  onFetchProgress?: RequesterSessionInit['onFetchProgress']
}

/** The session on `node`, then `ready` (waiting for a first peer); `close` stops the session only. */
async function openOn (init: SessionOn, ready?: () => Promise<void>): Promise<RequesterNode> {
  const { startRequesterSession } = await import('../requester/index.ts')
  const { node, store, key, log } = init
  const session = await startRequesterSession({
    node, key, store, policy: init.policy, certs: init.certs,
    ...(init.shared !== undefined ? { shared: init.shared } : {}),
    ...(init.offerWindowMs !== undefined ? { offerWindowMs: init.offerWindowMs } : {}),
    ...(init.onFetchProgress !== undefined ? { onFetchProgress: init.onFetchProgress } : {}),
    log: (level, message) => { log[level](message) }
  })
  let closing: Promise<void> | undefined
  const close = async (): Promise<void> => {
    closing ??= session.stop()
    await closing
  }
  try {
    await ready?.()
  } catch (err) {
    await close()
    throw err
  }
  const publishTags: RequesterNode['publishTags'] = async (image, names, signal) => {
    const { publishTagRecord } = await import('../p2p/tag-records.ts')
    const out: PublishedTagName[] = []
    for (const { repository, tag } of names) {
      const published = await publishTagRecord(node, key, { repository, tag, digest: image.digest, mediaType: image.mediaType, size: image.size }, { certificates: init.certs, ...(signal !== undefined ? { signal } : {}) })
      log.info({ repository, tag, digest: image.digest, storedOn: published.storedOn }, 'tag record published')
      out.push({ repository, tag, storedOn: published.storedOn })
    }
    return out
  }
  return { session, node, close, publishTags }
}
