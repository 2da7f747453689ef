/**
 * What a gateway attached to the peer network does after a push: announce
 * the pushed blobs (DHT provide) and, for a tag, publish a signed tag record
 * (src/p2p/tag-records.ts), in the background, one push at a time.
 */
import type { PrivateKey } from '@libp2p/interface'
import type { PushEvent } from '../gateway/index.ts'
import type { KilnNode } from '../p2p/index.ts'
import type { JobTransport } from '../jobs/index.ts'
import type { Transfer } from '../transfer/index.ts'

/** The network side a gateway can use: the node, its transfer, and the key that signs tag records. */
export interface GatewayNetwork {
  node: KilnNode
  transfer: Transfer
  privateKey: PrivateKey
  /** The node's job transport when a service of the process runs one (`kiln up`'s agent); absent: the gateway's network builds start their own. */
  transport?: JobTransport
}

export interface PushAnnouncer {
  onPush: (event: PushEvent) => void
  /** Waits for the announcements in flight, at most 5 s, then abandons the rest. */
  drain: () => Promise<void>
}

/** This node's certificates as a live trust keeps them (./trust.ts): `refresh` reads them again if their files changed. */
export interface PresentedCertificates {
  readonly certs: unknown[]
  refresh: () => Promise<void>
}

export function createPushAnnouncer (network: GatewayNetwork, presented: PresentedCertificates, log: { warn: (o: object, m: string) => void, info: (o: object, m: string) => void }): PushAnnouncer {
  let chain: Promise<void> = Promise.resolve()
  const abort = new AbortController()
  return {
    onPush: (event) => {
      chain = chain.then(async () => {
        if (abort.signal.aborted) return
        const { publishTagRecord } = await import('../p2p/tag-records.ts')
        const signal = AbortSignal.any([abort.signal, AbortSignal.timeout(60_000)])
        for (const digest of event.digests) {
          await network.transfer.provide(digest, { signal }).catch((err: Error) => { log.warn({ digest, err: err.message }, 'provide failed') })
        }
        if (event.tag === undefined) return
        // A certificate added with `kiln trust add-cert` since the last decision goes with this record too.
        await presented.refresh()
        const published = await publishTagRecord(network.node, network.privateKey, {
          repository: event.repository, tag: event.tag, digest: event.digest, mediaType: event.mediaType, size: event.size
        }, { certificates: [...presented.certs], signal })
        log.info({ repository: event.repository, tag: event.tag, digest: event.digest, storedOn: published.storedOn }, 'tag record published')
      }).catch((err: Error) => { log.warn({ repository: event.repository, tag: event.tag, err: err.message }, 'tag record publication failed') })
    },
    drain: async () => {
      const timer = setTimeout(() => { abort.abort() }, 5_000)
      await chain
      clearTimeout(timer)
    }
  }
}
