/**
 * The set of candidate providers of one blob: hints, connected peers and the
 * DHT's providers of the blob's CID, growing while a fetch runs.
 */
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { digestToCid } from '../content/index.ts'
import type { Digest } from '../content/index.ts'
import type { KilnNode } from '../p2p/index.ts'
import type { Metrics } from '../metrics/index.ts'

export class ProviderSet {
  private readonly peers = new Map<string, PeerId>()
  private readonly listeners = new Set<() => void>()
  private searching = false

  add (peer: PeerId | string): void {
    const id = typeof peer === 'string' ? peerIdFromString(peer) : peer
    const key = id.toString()
    if (this.peers.has(key)) return
    this.peers.set(key, id)
    for (const l of this.listeners) l()
  }

  list (): PeerId[] {
    return [...this.peers.values()]
  }

  get isSearching (): boolean {
    return this.searching
  }

  onChange (listener: () => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  /** Adds the DHT's providers of the digest's CID as they are found, until the signal fires or the query ends. */
  async search (node: KilnNode, digest: Digest, signal: AbortSignal, metrics?: Metrics): Promise<void> {
    this.searching = true
    const started = performance.now()
    let found = false
    let outcome = 'error'
    try {
      for await (const event of node.services.dht.findProviders(digestToCid(digest), { signal })) {
        if (event.name !== 'PROVIDER') continue
        found = true
        for (const p of event.providers) {
          if (p.id.equals(node.peerId)) continue
          if (p.multiaddrs.length > 0) await node.peerStore.merge(p.id, { multiaddrs: p.multiaddrs }).catch(() => {})
          this.add(p.id)
        }
      }
      outcome = found ? 'found' : 'not_found'
    } catch {
      // The search is best effort; the fetch fails on its own if nobody serves the blob.
      // Cut short by the fetch (it has the blob, or gave up): what it found so far is the answer.
      if (signal.aborted) outcome = found ? 'found' : 'not_found'
    } finally {
      metrics?.inc('kiln_dht_lookups_total', { kind: 'providers', outcome })
      metrics?.observe('kiln_dht_lookup_duration_seconds', { kind: 'providers' }, (performance.now() - started) / 1000)
      this.searching = false
      for (const l of this.listeners) l()
    }
  }
}
