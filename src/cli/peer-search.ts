/**
 * What a command says while it waits for its first peer. A *peer search*
 * is the wait of `kiln pull`, `kiln peers`, `kiln submit` and `kiln jobs`
 * for one reachable peer before they can ask the network anything; its
 * *sources* are how peers are found: mDNS on the local network (unless
 * --no-mdns) and the bootstrap list (--bootstrap, else node.bootstrap of
 * kiln.yaml). A search that ends within a second says nothing; a longer one
 * says once, on stderr, what it is doing, so the wait before "no peer
 * reachable" is not silent.
 */
import type { Output } from './output.ts'

/** After this long without a peer the search says what it is doing. */
export const PEER_SEARCH_QUIET_MS = 1000

export interface PeerSearchSources {
  mdns: boolean
  /** Multiaddrs of --bootstrap, else of node.bootstrap. */
  bootstrap: readonly string[]
}

/** `looking for peers (mDNS, bootstrap list of 2)...`, naming only the sources in use. */
export function peerSearchText (sources: PeerSearchSources): string {
  const used = [
    ...(sources.mdns ? ['mDNS on the local network'] : []),
    ...(sources.bootstrap.length > 0 ? [`bootstrap list of ${sources.bootstrap.length}`] : [])
  ]
  return used.length === 0 ? 'looking for peers (no mDNS and no bootstrap list: only peers that dial in)...' : `looking for peers (${used.join(', ')})...`
}

/** The sources of a command's --mdns/--no-mdns and --bootstrap flags over the config's node section. */
export function peerSearchSources (flags: { mdns?: boolean, bootstrap?: string }, node: { mdns: boolean, bootstrap: readonly string[] }): PeerSearchSources {
  const given = flags.bootstrap?.split(',').map(s => s.trim()).filter(s => s !== '')
  return { mdns: flags.mdns ?? node.mdns, bootstrap: given ?? node.bootstrap }
}

/** Resolves as `search` does; notes what it is doing if the search is still running after PEER_SEARCH_QUIET_MS. */
export async function sayingPeerSearch<T> (out: Pick<Output, 'note'>, sources: PeerSearchSources, search: Promise<T>, quietMs = PEER_SEARCH_QUIET_MS): Promise<T> {
  const timer = setTimeout(() => { out.note(peerSearchText(sources)) }, quietMs)
  try {
    return await search
  } finally {
    clearTimeout(timer)
  }
}
