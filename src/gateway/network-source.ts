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
import type { GatewayLogger } from './context.ts'
import type { NamedPullThrough } from './pull-through.ts'
import { ArrivingBlobState } from './arriving.ts'
import type { ArrivingBlob } from './arriving.ts'
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
  /** Where the transfer's notes go (peers dropped, banned, or whose bytes failed a digest check). */
  logger?: GatewayLogger
}

/** Fetches with an idle deadline: reset by every progress report, so a large blob that keeps arriving is never cut short. */
async function fetchWithIdle (init: NetworkPullThroughInit, digest: Digest, extra: Pick<FetchBlobOptions, 'onPartial' | 'onDigestMismatch' | 'onProgress'> = {}): Promise<boolean> {
  const idle = new AbortController()
  const idleMs = init.idleMs ?? NETWORK_FETCH_IDLE_MS
  let timer = setTimeout(() => { idle.abort() }, idleMs)
  try {
    await init.fetch(digest, {
      ...extra,
      signal: idle.signal,
      log: message => { init.logger?.warn({ digest }, message) },
      onProgress: (progress) => {
        clearTimeout(timer)
        timer = setTimeout(() => { idle.abort() }, idleMs)
        extra.onProgress?.(progress)
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

/**
 * Starts a fetch and resolves as soon as its size is known and bytes can be
 * followed (an ArrivingBlob), or with the outcome when it ends before that
 * (true: already stored; false: no peer has it). A fetch that fails later
 * settles the ArrivingBlob with the reason.
 */
async function streamFromPeers (init: NetworkPullThroughInit, digest: Digest): Promise<ArrivingBlob | boolean> {
  return await new Promise<ArrivingBlob | boolean>((resolve, reject) => {
    let arriving: ArrivingBlobState | undefined
    fetchWithIdle(init, digest, {
      onPartial: partial => {
        if (arriving === undefined) {
          arriving = new ArrivingBlobState(digest, partial)
          resolve(arriving)
        } else {
          arriving.attach(partial)
        }
      },
      onDigestMismatch: peers => {
        init.logger?.warn({ digest, peers }, 'peer sent bytes that do not match the digest')
        arriving?.mismatched(peers)
      },
      onProgress: () => { arriving?.changed() }
    }).then(ok => {
      arriving?.settle(ok, ok ? undefined : new Error(`fetching ${digest} from peers stalled or found no provider`))
      resolve(ok)
    }, (err: Error) => {
      arriving?.settle(false, err)
      reject(err)
    })
  })
}

export function createNetworkPullThrough (init: NetworkPullThroughInit): NamedPullThrough {
  return {
    name: 'network',
    fetchBlob: async (digest) => await fetchWithIdle(init, digest),
    streamBlob: async (digest) => await streamFromPeers(init, digest),
    resolveTag: async (repository, tag) => await init.resolveTag?.(repository, tag)
  }
}
