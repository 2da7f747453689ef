/**
 * Limits and fixed parameters of the builder.
 */

/** Preference order when choosing a sandbox driver automatically (docs/building.md). */
export const DRIVER_PREFERENCE = ['bwrap', 'unshare', 'proot'] as const

/** Device nodes bound into every sandbox from the host. */
export const SANDBOX_DEVICES = ['null', 'zero', 'random', 'urandom', 'tty', 'full'] as const

/** How long a probe of one driver may take before it counts as not working. */
export const PROBE_TIMEOUT_MS = 10_000

/** Default PATH for RUN steps when the image sets none (same as Docker's): the one ENV expands `$PATH` against. */
export { DEFAULT_PATH } from '../recipe/index.ts'

/** SOURCE_DATE_EPOCH when the caller gives none: every timestamp in the image is 1970-01-01T00:00:00Z. */
export const DEFAULT_SOURCE_DATE_EPOCH = 0

/** Bytes of a step's output kept to quote in the error of a failed RUN. */
export const FAILED_STEP_OUTPUT_TAIL = 4096

/**
 * What a step's output says when it needed the network and had none (glibc's
 * resolver, musl and busybox, curl, apt, pip); a failed step without network
 * whose output tail matches gets a hint naming `--network`.
 */
export const NO_NETWORK_OUTPUT = /Temporary failure (in name )?resolution|Temporary failure resolving|Could not resolve|bad address|Network is unreachable|Name or service not known|Failed to establish a new connection/i

/** Largest single file read whole into memory when hashing or diffing (bigger ones stream). */
export const HASH_CHUNK_SIZE = 1024 * 1024


/** Under the builder's work dir: RUN --mount=type=cache dirs (./executor/mounts.ts), counted by ./snapshots.ts. */
export const CACHE_MOUNTS_DIR = 'cache-mounts'

/** How often a `sharing=locked` cache mount looks again whether its lock is free. */
export const LOCK_POLL_MS = 200
/** Largest file `ADD <url>` downloads; a larger one fails the step (RemoteSourceError). */
export const ADD_URL_MAX_BYTES = 4 * 1024 * 1024 * 1024

/** How long one `ADD <url>` download, or one git command of `ADD <git>`, may take. */
export const REMOTE_SOURCE_TIMEOUT_MS = 30 * 60_000
