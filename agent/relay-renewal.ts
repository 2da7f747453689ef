/**
 * What an agent reached through a relay (`relayVia`) does when its
 * reservation there is dropped and made again (src/p2p/relay-via.ts): it
 * logs both, and once renewed publishes its capability record and provides
 * every discovery key and stored blob again. A relay that restarted lost the
 * DHT records it held, and it is often the only DHT peer a compute node
 * has: until they are back, no requester finds the agent by its capabilities
 * and no puller finds it as a provider.
 */
import type { Logger } from 'pino'
import type { CapabilityAdvertiser, KilnNode, RelayLost, RelayRenewed, RelayRetry } from '../src/p2p/index.ts'
import type { Transfer } from '../src/transfer/index.ts'

export interface RelayRenewalInit {
  node: KilnNode
  advertiser: CapabilityAdvertiser
  transfer: Transfer
  /** Provide the stored blobs again too (the agent announces its store); default true. */
  provideStore?: boolean
  log?: Logger
}

/**
 * Follows the node's relayVia service, if it has one. Returns what stops
 * following: it aborts the store's announcement and waits for it; a
 * publication under way ends with the advertiser's stop().
 */
export function followRelayRenewals (init: RelayRenewalInit): () => Promise<void> {
  const relays = init.node.services.relayVia
  if (relays === undefined) return async () => {}
  const { advertiser, transfer, log } = init
  let announcing: Promise<void> | undefined
  let again = false
  let stopped = false
  const stopping = new AbortController()

  const announce = async (): Promise<void> => {
    do {
      again = false
      await advertiser.publish({ reprovide: true })
        .catch((err: Error) => { if (!stopped) log?.warn({ err }, 'capability record publication after the relay reservation was renewed failed') })
      if (init.provideStore !== false && !stopped) {
        const blobs = await transfer.provideAll({ signal: stopping.signal }).catch((err: Error) => { if (!stopped) log?.warn({ err }, 'announcing the store after the relay reservation was renewed failed'); return undefined })
        if (blobs !== undefined) log?.info({ blobs }, 'store announced again')
      }
    } while (again && !stopped)
  }

  const onLost = (evt: CustomEvent<RelayLost>): void => { log?.warn({ relay: evt.detail.relay }, 'relay reservation lost, re-reserving') }
  const onRetry = (evt: CustomEvent<RelayRetry>): void => {
    log?.info({ relay: evt.detail.relay, attempt: evt.detail.attempt, err: evt.detail.error.message, nextInMs: evt.detail.nextInMs }, 'relay reservation not made yet, trying again')
  }
  const onRenewed = (evt: CustomEvent<RelayRenewed>): void => {
    log?.info({ relay: evt.detail.relay, attempts: evt.detail.attempts, addresses: init.node.getMultiaddrs().map(a => a.toString()) }, 'relay reservation renewed')
    // Renewals during an announcement (a flapping relay) make one more round, not a second one in parallel.
    if (announcing !== undefined) { again = true; return }
    announcing = announce().finally(() => { announcing = undefined })
  }
  relays.addEventListener('relay:lost', onLost)
  relays.addEventListener('relay:retry', onRetry)
  relays.addEventListener('relay:renewed', onRenewed)
  return async () => {
    stopped = true
    stopping.abort()
    relays.removeEventListener('relay:lost', onLost)
    relays.removeEventListener('relay:retry', onRetry)
    relays.removeEventListener('relay:renewed', onRenewed)
    await announcing
  }
}
