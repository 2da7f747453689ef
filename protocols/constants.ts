/**
 * Protocol ids, sizes and times of the peer network, each with the section of
 * the normative spec that fixes it (./capability.md, ./blob.md).
 */

const SECOND = 1000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE
const KiB = 1024
const MiB = 1024 * KiB

// capability.md §1: the DHT
/** The Kademlia protocol; kiln never joins the public IPFS DHT (`/ipfs/kad/1.0.0`). */
export const KAD_PROTOCOL = '/kiln/kad/1.0.0'
/** DHT record namespace: records live under `/kiln-cap/<peerId>`. */
export const CAPABILITY_NAMESPACE = 'kiln-cap'

// capability.md §2: the record
/** Domain-separation string prefixed to the signed bytes of a capability record. */
export const CAPABILITY_DOMAIN = 'kiln/capability/v1'
/** Largest encoded capability record (signature included). */
export const CAPABILITY_MAX_BYTES = 16 * KiB
/** Longest validity (`expiresAt - issuedAt`) a verifier accepts. */
export const CAPABILITY_MAX_TTL_MS = 24 * HOUR
/** Default validity an agent gives its record. */
export const CAPABILITY_DEFAULT_TTL_MS = 30 * MINUTE
/** How far in the future `issuedAt` may lie (clock skew between sites). */
export const CAPABILITY_MAX_CLOCK_SKEW_MS = 5 * MINUTE
/** Most platforms, capabilities, emulated platforms, addresses, CPU features per record. */
export const CAPABILITY_MAX_LIST = 64
export const CAPABILITY_MAX_FEATURES = 256

// capability.md §4: discovery keys
export const PLATFORM_KEY_PREFIX = 'kiln/platform/'
export const CAPABILITY_KEY_PREFIX = 'kiln/capability/'
/** Every agent provides this key, so that an unfiltered search finds them all. */
export const AGENT_KEY = 'kiln/agent'

// blob.md §1
export const BLOB_PROTOCOL = '/kiln/blob/1.0.0'
/** Largest request or response header (length-prefixed JSON). */
export const BLOB_MAX_HEADER_BYTES = 4 * KiB
/** Largest range one request may ask for; a fetcher asks for at most this much. */
export const BLOB_MAX_RANGE_BYTES = 16 * MiB
/** Requests a client may send on one stream before it must open another. */
export const BLOB_MAX_REQUESTS_PER_STREAM = 1024
/** Concurrent inbound blob streams a server accepts per connection (and direct channels per peer). */
export const BLOB_MAX_INBOUND_STREAMS = 32
/** Concurrent direct blob channels (transport.md §5) a server accepts from all peers together. */
export const BLOB_MAX_DIRECT_CHANNELS = 256
/** A request header must arrive within this time of the stream opening or of the previous response. */
export const BLOB_REQUEST_TIMEOUT_MS = 30 * SECOND
/** A response may stall (no bytes in either direction) for at most this long. */
export const BLOB_IDLE_TIMEOUT_MS = 15 * SECOND
