/**
 * Defaults of the kiln libp2p node. Protocol ids and wire limits live in
 * protocols/constants.ts; these are local tuning choices.
 */

const MiB = 1024 * 1024

/** Listen on every IPv4 interface, a free TCP port. */
export const DEFAULT_LISTEN = ['/ip4/0.0.0.0/tcp/0']
/**
 * Yamux stream windows. Bulk blob ranges (4 MiB) flow on one stream, and the
 * 256 KiB default window stalls a stream every 256 KiB for a round trip;
 * 16 MiB lets a whole range be in flight (DESIGN: measured small gain).
 */
export const YAMUX_INITIAL_STREAM_WINDOW = 4 * MiB
export const YAMUX_MAX_STREAM_WINDOW = 16 * MiB
/** Most connections a node keeps; an agent serves many pullers. */
export const DEFAULT_MAX_CONNECTIONS = 300
/** How often the DHT re-runs its self query once warmed up. */
export const DHT_QUERY_SELF_INTERVAL_MS = 5 * 60_000
/** mdns service tag, so kiln nodes find each other and not every libp2p app on the LAN. */
export const MDNS_SERVICE_TAG = 'kiln'
/** Inbound connections per second from one IP (a login node fronting many jobs, or loopback tests). */
export const DEFAULT_INBOUND_CONNECTION_THRESHOLD = 50
