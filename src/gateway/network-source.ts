/**
 * Pull-through from the peer network: blobs by digest through src/transfer
 * (multi-peer, verified into the store), tags through whatever resolver the
 * caller gives (the CLI passes the signed tag record resolver of
 * src/p2p/tag-records.ts, bound to its trust policy).
 */
import type { Digest } from '../content/digest.ts'
import type { RefTarget } from '../content/refs.ts'
import type { FetchBlobOptions, FetchResult } from '../transfer/index.ts'
import { NETWORK_FETCH_IDLE_MS } from './constants.ts'
import type { NamedPullThrough } from './pull-through.ts'
import { NotFoundError } from '../content/errors.ts'
import { NoProvidersError } from '../transfer/errors.ts'
import { isErrorOf } from '../util/error-class.ts'

export interface NetworkPullThroughInit {
  /** Transfer.fetch, or anything with its contract. */
  fetch: (digest: Digest, options?: FetchBlobOptions) => Promise<FetchResult>
  /** Resolves a tag from the network's signed tag records; absent: tags are never resolved from the network. */
  resolveTag?: (repository: string, tag: string) => Promise<RefTarget | undefined>
  /** A fetch making no progress (no provider, no bytes) for this long is abandoned; default NETWORK_FETCH_IDLE_MS. */
  idleMs?: number
}

/** Fetches with an idle deadline: reset by every progress report, so a large blob that keeps arriving is never cut short. */
async function fetchWithIdle (init: NetworkPullThroughInit, digest: Digest): Promise<boolean> {
  const idle = new AbortController()
  const idleMs = init.idleMs ?? NETWORK_FETCH_IDLE_MS
  let timer = setTimeout(() => { idle.abort() }, idleMs)
  try {
    await init.fetch(digest, {
      signal: idle.signal,
      onProgress: () => {
        clearTimeout(timer)
        timer = setTimeout(() => { idle.abort() }, idleMs)
      }
    })
    return true
  } catch (err) {
    if (idle.signal.aborted || isErrorOf(err, NoProvidersError) || isErrorOf(err, NotFoundError)) return false
    throw err
  } finally {
    clearTimeout(timer)
  }
}

export function createNetworkPullThrough (init: NetworkPullThroughInit): NamedPullThrough {
  return {
    name: 'network',
    fetchBlob: async (digest) => await fetchWithIdle(init, digest),
    resolveTag: async (repository, tag) => await init.resolveTag?.(repository, tag)
  }
}
