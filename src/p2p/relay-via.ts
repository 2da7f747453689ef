/**
 * Keeps a node reachable through the relays it was told to use
 * (`relayVia`, docs/network.md#relays), a libp2p service of the node.
 *
 * libp2p's circuit-relay transport reserves a slot on a relay named in a
 * `<relay>/p2p-circuit` listen address once, at listen time. Its reservation
 * store drops the reservation when the connection it was made on closes
 * (the relay restarted, the link broke), its listener withdraws the relayed
 * address, and nothing reserves again: a refresh or a new reservation is only
 * ever made for relays the transport found by itself (js-libp2p issue 3601).
 * The node reconnects to the relay (a bootstrap peer) but stays unreachable.
 *
 * So when the store drops a reservation on one of these relays, this service
 * dials the relay and asks the store for a new reservation, with backoff,
 * until it has one or the node stops. The transport's listener applies the
 * new reservation (its `relay:created-reservation` handler does so for the
 * relay it listens on), which confirms the relayed address again and updates
 * the self peer record. Listeners of `relay:renewed` (agent/runtime.ts)
 * republish what other nodes look the node up by: its capability record and
 * provider records, lost with the relay's in-memory DHT.
 */
import { TypedEventEmitter } from 'main-event'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { AbortOptions, ComponentLogger, Connection, Logger, PeerId, Startable } from '@libp2p/interface'
import { RELAY_RENEW_BACKOFF_MAX_MS, RELAY_RENEW_BACKOFF_MS, RELAY_RENEW_DIAL_TIMEOUT_MS } from './constants.ts'

export interface RelayViaComponents {
  /** libp2p's transport manager; only its transports are read. */
  transportManager: { getTransports: () => unknown[] }
  /** libp2p's connection manager; only used to dial the relay. */
  connectionManager: { openConnection: (addr: Multiaddr, options?: AbortOptions) => Promise<Connection> }
  logger: ComponentLogger
}

export interface RelayViaInit {
  /** Relay multiaddrs, each ending in `/p2p/<relay id>`. */
  relays: string[]
  /** First wait before re-reserving; doubles per failed try up to maxBackoffMs. Defaults in constants.ts. */
  backoffMs?: number
  maxBackoffMs?: number
  /** One dial of the relay. */
  dialTimeoutMs?: number
}

export interface RelayLost { relay: string }
export interface RelayRenewed { relay: string, attempts: number, addresses: string[] }
export interface RelayRetry { relay: string, attempt: number, error: Error, nextInMs: number }

export interface RelayViaEvents {
  /** A reservation on a relay was dropped; re-reserving starts. */
  'relay:lost': CustomEvent<RelayLost>
  /** A try failed; the next comes after `nextInMs`. */
  'relay:retry': CustomEvent<RelayRetry>
  /** A new reservation was made and the relayed address is announced again. */
  'relay:renewed': CustomEvent<RelayRenewed>
}

/** The service: events as above; `renewing()` lists the relays being re-reserved. */
export interface RelayVia extends TypedEventEmitter<RelayViaEvents> {
  renewing: () => string[]
}

/** The reservation store's part this service uses (@libp2p/circuit-relay-v2's transport/reservation-store). */
interface ReservationStoreSeam {
  addEventListener: (type: 'relay:removed', listener: (evt: CustomEvent<{ relay: PeerId }>) => void) => void
  removeEventListener: (type: 'relay:removed', listener: (evt: CustomEvent<{ relay: PeerId }>) => void) => void
  addRelay: (peerId: PeerId, type: 'configured') => Promise<{ details: { reservation: { addrs: Uint8Array[] } } }>
  hasReservation: (peerId: PeerId) => boolean
}

const CIRCUIT_TRANSPORT_TAG = '@libp2p/circuit-relay-v2-transport'

class RelayViaService extends TypedEventEmitter<RelayViaEvents> implements RelayVia, Startable {
  private readonly components: RelayViaComponents
  private readonly log: Logger
  private readonly relays = new Map<string, Multiaddr>()
  private readonly backoffMs: number
  private readonly maxBackoffMs: number
  private readonly dialTimeoutMs: number
  private readonly active = new Map<string, Promise<void>>()
  private store?: ReservationStoreSeam
  private stopping = new AbortController()

  constructor (components: RelayViaComponents, init: RelayViaInit) {
    super()
    this.components = components
    this.log = components.logger.forComponent('kiln:relay-via')
    for (const r of init.relays) {
      const ma = multiaddr(r)
      const id = ma.getComponents().findLast(c => c.name === 'p2p')?.value
      if (id !== undefined) this.relays.set(id, ma)
    }
    this.backoffMs = init.backoffMs ?? RELAY_RENEW_BACKOFF_MS
    this.maxBackoffMs = init.maxBackoffMs ?? RELAY_RENEW_BACKOFF_MAX_MS
    this.dialTimeoutMs = init.dialTimeoutMs ?? RELAY_RENEW_DIAL_TIMEOUT_MS
  }

  readonly [Symbol.toStringTag] = 'kiln:relay-via'

  start (): void {
    this.stopping = new AbortController()
    // The transport is public on the transport manager; its store is a public field of the transport, not re-exported by the package.
    const transport = this.components.transportManager.getTransports().find(t => (t as { [Symbol.toStringTag]?: string })[Symbol.toStringTag] === CIRCUIT_TRANSPORT_TAG)
    this.store = (transport as { reservationStore?: ReservationStoreSeam } | undefined)?.reservationStore
    if (this.store === undefined) throw new Error('relayVia needs the circuit-relay transport, which this node does not have')
    this.store.addEventListener('relay:removed', this.onRemoved)
  }

  stop (): void {
    this.stopping.abort()
    this.store?.removeEventListener('relay:removed', this.onRemoved)
  }

  renewing (): string[] {
    return [...this.active.keys()].map(id => this.relays.get(id)?.toString() ?? id)
  }

  private readonly onRemoved = (evt: CustomEvent<{ relay: PeerId }>): void => {
    const id = evt.detail.relay.toString()
    const relay = this.relays.get(id)
    if (relay === undefined || this.stopping.signal.aborted || this.active.has(id)) return
    this.safeDispatchEvent('relay:lost', { detail: { relay: relay.toString() } })
    const renewing = this.renew(evt.detail.relay, relay)
      .catch((err: Error) => { if (!this.stopping.signal.aborted) this.log.error('re-reserving on %a stopped - %e', relay, err) })
      .finally(() => { this.active.delete(id) })
    this.active.set(id, renewing)
  }

  /** Dials the relay and reserves a slot on it, waiting longer after each failed try, until one succeeds or the node stops. */
  private async renew (peer: PeerId, relay: Multiaddr): Promise<void> {
    const store = this.store as ReservationStoreSeam
    const signal = this.stopping.signal
    let wait = this.backoffMs
    for (let attempt = 1; ; attempt++) {
      await abortableDelay(wait, signal)
      if (signal.aborted) return
      try {
        // Dialed first, so that a refused dial does not reach the store, which would then refuse this relay for good.
        await this.components.connectionManager.openConnection(relay, { signal: AbortSignal.any([signal, AbortSignal.timeout(this.dialTimeoutMs)]) })
        // A reservation made meanwhile (the transport's own refresh) counts, but only if it rides a live connection: the store dropped the old one.
        const made = store.hasReservation(peer) ? undefined : await store.addRelay(peer, 'configured')
        const addresses = made?.details.reservation.addrs.map(a => multiaddr(a).encapsulate('/p2p-circuit').toString()) ?? []
        this.safeDispatchEvent('relay:renewed', { detail: { relay: relay.toString(), attempts: attempt, addresses } })
        return
      } catch (err) {
        if (signal.aborted) return
        const nextInMs = Math.min(wait * 2, this.maxBackoffMs)
        this.safeDispatchEvent('relay:retry', { detail: { relay: relay.toString(), attempt, error: err as Error, nextInMs } })
        wait = nextInMs
      }
    }
  }
}

async function abortableDelay (ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return
  await new Promise<void>(resolve => {
    const done = (): void => { clearTimeout(timer); signal.removeEventListener('abort', done); resolve() }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}

/** The service factory for createLibp2p's `services`. */
export function relayVia (init: RelayViaInit): (components: RelayViaComponents) => RelayVia {
  return (components) => new RelayViaService(components, init)
}
