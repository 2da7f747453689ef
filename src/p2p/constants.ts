/**
 * Defaults of the kiln libp2p node. Protocol ids and wire limits live in
 * protocols/constants.ts; these are local tuning choices.
 */

const MiB = 1024 * 1024

/** The node key's file in the data dir (./identity.ts). */
export const IDENTITY_FILE = 'identity.key'

/** Listen on every IPv4 interface, a free TCP port. */
export const DEFAULT_LISTEN = ['/ip4/0.0.0.0/tcp/0']
/**
 * Yamux stream windows. js-yamux sends a data frame as large as the whole
 * send window and grants a new window only once a frame has fully arrived,
 * so a stream moves one window per round trip. A blob response (a 4 MiB
 * range plus its header) did not fit a 4 MiB initial window and stalled
 * twice per range; 16 MiB takes a whole range at once, 64 MiB lets a fast
 * stream grow. Memory is only used while a reader lags behind its sender.
 */
export const YAMUX_INITIAL_STREAM_WINDOW = 16 * MiB
export const YAMUX_MAX_STREAM_WINDOW = 64 * MiB
/** Most connections a node keeps; an agent serves many pullers. */
export const DEFAULT_MAX_CONNECTIONS = 300
/**
 * How often each connection is pinged (libp2p's connection monitor; its
 * default is 10 s). A ping opens a stream, negotiates the protocol and
 * updates the peer store at both ends: an idle node with 30 connections
 * spent most of its CPU on them. A dead peer is still noticed at once when
 * TCP reports it, and within a minute otherwise.
 */
export const CONNECTION_PING_INTERVAL_MS = 60_000
/** How often the DHT re-runs its self query once warmed up. */
export const DHT_QUERY_SELF_INTERVAL_MS = 5 * 60_000
/** mdns service tag, so kiln nodes find each other and not every libp2p app on the LAN. */
export const MDNS_SERVICE_TAG = 'kiln'
/** Inbound connections per second from one IP (a login node fronting many jobs, or loopback tests). */
export const DEFAULT_INBOUND_CONNECTION_THRESHOLD = 50
/** Reservations a relay (`node.relay: true`) holds at once: one per compute node behind it (libp2p's default is 15). */
export const RELAY_MAX_RESERVATIONS = 256
/**
 * Re-reserving on a `relayVia` relay whose reservation was dropped (./relay-via.ts): the first try
 * comes this long after the drop (a restarting relay is rarely back sooner), each failed try doubles
 * the wait up to the maximum, and one dial of the relay is bounded.
 */
export const RELAY_RENEW_BACKOFF_MS = 500
export const RELAY_RENEW_BACKOFF_MAX_MS = 30_000
export const RELAY_RENEW_DIAL_TIMEOUT_MS = 10_000
