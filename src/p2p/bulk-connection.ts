/**
 * Picking the connection that bulk data (blob ranges) travels on. A peer
 * first reached on its plain TCP address (a bootstrap entry, mDNS, a stock
 * libp2p peer's dial) is connected over Noise; if it also listens on TCP+TLS
 * (src/p2p/tls-transport.ts), a second connection over that carries blobs
 * several times faster. Everything else stays on whichever connection
 * libp2p picks.
 */
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { DirectChannel } from './direct.ts'
import { FailedDials } from './failed-dials.ts'
import type { KilnNode } from './node.ts'
import { CODE_P2P, isTcpTlsAddress } from './tls-transport.ts'

/** Per node, peers whose TLS dial failed: not tried over TLS again for 5 minutes. */
const failedTlsDials = new WeakMap<KilnNode, FailedDials>()

const isTlsConnection = (c: Connection): boolean => c.status === 'open' && isTcpTlsAddress(c.remoteAddr)

/**
 * The open TCP+TLS connection to `peer`, dialing one when the peer
 * advertises a `/tls` address and this node has the transport; otherwise
 * whatever connection a normal dial gives.
 */
export async function bulkConnection (node: KilnNode, peer: PeerId, signal: AbortSignal): Promise<Connection> {
  const existing = node.getConnections(peer).find(isTlsConnection)
  if (existing !== undefined) return existing
  const failed = failedTlsDials.get(node) ?? new FailedDials()
  failedTlsDials.set(node, failed)
  const key = peer.toString()
  const canDialTls = node.getMultiaddrs().some(isTcpTlsAddress)
  if (canDialTls && !failed.recent(key)) {
    const addrs = await peerTlsAddresses(node, peer, signal)
    for (const addr of addrs) {
      try {
        const ma = addr.toString().includes('/p2p/') ? addr : addr.encapsulate(`/p2p/${key}`)
        return await node.dial(ma, { signal, force: true })
      } catch {
        signal.throwIfAborted()
      }
    }
    if (addrs.length > 0) failed.note(key)
  }
  return await node.dial(peer, { signal })
}

/** The `/tls` addresses `peer` listens on, as far as this node knows them (its peer store). */
export async function peerTlsAddresses (node: KilnNode, peer: PeerId, signal: AbortSignal): Promise<Multiaddr[]> {
  return await node.peerStore.get(peer, { signal }).then(p => p.addresses.map(a => a.multiaddr).filter(isTcpTlsAddress), () => [])
}

/**
 * A direct channel (src/p2p/direct.ts) for `protocol` to `peer`, or
 * undefined when there is none to be had (the caller uses a libp2p stream).
 * Addresses tried: those of this node's own TLS dials to the peer (known to
 * answer), then the `/tls` addresses in the peer store.
 */
export async function dialDirect (node: KilnNode, peer: PeerId, protocol: string, maxBuffered: number, signal: AbortSignal): Promise<DirectChannel | undefined> {
  const direct = node.services.direct
  if (direct?.enabled !== true) return undefined
  const dialed = node.getConnections(peer).filter(c => c.direction === 'outbound' && isTlsConnection(c)).map(c => c.remoteAddr)
  const known = await peerTlsAddresses(node, peer, signal)
  const seen = new Set<string>()
  const addrs = [...dialed, ...known].filter(a => { const k = a.decapsulateCode(CODE_P2P).toString(); if (seen.has(k)) return false; seen.add(k); return true })
  return await direct.dial(peer, addrs, protocol, maxBuffered, signal)
}

/** A new stream for `protocol` on the bulk connection to `peer` (see bulkConnection). */
export async function dialBulkProtocol (node: KilnNode, peer: PeerId, protocol: string, signal: AbortSignal): Promise<Stream> {
  const connection = await bulkConnection(node, peer, signal)
  return await connection.newStream(protocol, { signal })
}
