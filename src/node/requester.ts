/**
 * A requester session on a data dir (what `kiln submit` and `kiln jobs
 * cancel|resume` open): the trust policy and certificates, a client node on
 * free ports, and `startRequesterSession` (src/requester) on it, once a peer
 * is reachable; and the signed tag records of its results (`kiln submit -t`).
 */
import type { Logger } from 'pino'
import type { KilnConfig } from '../config/index.ts'
import type { LocalStore } from '../content/index.ts'
import type { Identity } from '../p2p/identity.ts'
import type { KilnNode, NodeFlags } from '../p2p/index.ts'
import type { RequesterSession, RequesterSessionInit } from '../requester/index.ts'
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
  const [{ startRequesterSession }, { loadTrustPolicy, loadCertificates }] = await Promise.all([
    import('../requester/index.ts'), import('../trust/index.ts')
  ])
  const { config, store, identity } = init
  const log = init.log.child({ component: 'requester' })
  const self = identity.peerId.toString()
  const policy = await loadTrustPolicy(store.root, { self, config: config.trust })
  if (!policy.config.open && policy.config.roots.every(r => !r.roles.includes('builder')) && policy.config.peers.every(p => !p.roles.includes('builder'))) {
    init.warn?.('the trust policy names no builder: every offer will be refused (kiln trust add-root FILE --roles builder)')
  }
  const certs = await loadCertificates(store.root, self, (file, reason) => { log.warn({ file, reason }, 'certificate skipped') })
  const node = await startPeer(config.node, init.network, identity.privateKey, true)
  let session: RequesterSession | undefined
  let closing: Promise<void> | undefined
  const close = async (): Promise<void> => {
    closing ??= (async () => {
      await session?.stop()
      await node.stop()
    })()
    await closing
  }
  try {
    session = await startRequesterSession({
      node, key: identity.privateKey, store, policy, certs,
      ...(init.offerWindowMs !== undefined ? { offerWindowMs: init.offerWindowMs } : {}),
      ...(init.onFetchProgress !== undefined ? { onFetchProgress: init.onFetchProgress } : {}),
      log: (level, message) => { log[level](message) }
    })
    await untilFirstPeer(node, FIRST_PEER_TIMEOUT_MS)
  } catch (err) {
    await close()
    throw err
  }
  const publishTags: RequesterNode['publishTags'] = async (image, names, signal) => {
    const { publishTagRecord } = await import('../p2p/tag-records.ts')
    const out: PublishedTagName[] = []
    for (const { repository, tag } of names) {
      const published = await publishTagRecord(node, identity.privateKey, { repository, tag, digest: image.digest, mediaType: image.mediaType, size: image.size }, { certificates: certs, ...(signal !== undefined ? { signal } : {}) })
      log.info({ repository, tag, digest: image.digest, storedOn: published.storedOn }, 'tag record published')
      out.push({ repository, tag, storedOn: published.storedOn })
    }
    return out
  }
  return { session, node, close, publishTags }
}
