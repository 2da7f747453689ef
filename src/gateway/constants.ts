/**
 * Limits and fixed parameters of the gateway. Section numbers refer to the
 * OCI distribution spec v1.1.
 */

/** Largest manifest accepted on PUT (spec: registries SHOULD accept at least 4 MiB). */
export { MAX_MANIFEST_SIZE } from '../oci/constants.ts'

/** An upload session not touched for this long is discarded with its data. */
export const UPLOAD_SESSION_TTL_MS = 60 * 60 * 1000

/** How often expired upload sessions are swept. */
export const UPLOAD_SWEEP_INTERVAL_MS = 5 * 60 * 1000

/** Most entries returned by tags/list and _catalog when the client gives no `n`. */
export const DEFAULT_PAGE_SIZE = 1000

/** Most entries returned by tags/list and _catalog whatever `n` says. */
export const MAX_PAGE_SIZE = 10_000

/** Lifetime of a bearer token issued by /token, in seconds (docker's default is 60 s minimum; 5 min is common). */
export const TOKEN_TTL_SECONDS = 300

/** Longest repository name accepted (spec §"Pulling manifests": many clients limit host + name to 255). */
export const MAX_NAME_LENGTH = 255

/** Largest body read for a /token POST or any small JSON request. */
export const MAX_SMALL_BODY = 64 * 1024

/** Service name in WWW-Authenticate challenges and tokens when none is configured. */
export const DEFAULT_SERVICE = 'kiln-gateway'

/** Repository name grammar (spec §"Pulling manifests"). */
export const NAME_RE = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/

/** Tag grammar (spec §"Pulling manifests"). */
export const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/

/** scrypt parameters for stored password hashes (N=2^15, r=8, p=1: ~50 ms, 32 MiB). */
export const SCRYPT_PARAMS = { N: 32768, r: 8, p: 1, keyLength: 32, maxmem: 64 * 1024 * 1024 } as const

/**
 * Defaults of the login limits (./login-guard.ts). Two checks at once: the
 * libuv pool has four threads, shared with file reads, so other requests
 * keep two. 128 waiting: a CI burst of logins waits a few seconds rather
 * than failing, and a waiting login costs little memory. Ten failures a
 * minute per client and per user name: plenty for a mistyped password, and
 * a guessing attacker gets ten guesses a minute.
 */
export const LOGIN_LIMITS = { concurrentChecks: 2, queuedChecks: 128, maxFailures: 10, windowMs: 60_000, maxTracked: 10_000 } as const

/** Read size when streaming a blob file to a client. */
export const STREAM_CHUNK = 1024 * 1024

/**
 * Longest wait for the next bytes of a request body; a client that sends
 * nothing for this long is cut off (408). Uploads have no overall time
 * limit: a slow but steady one takes as long as it needs. (nginx's
 * client_body_timeout is the same idea, with the same default.)
 */
export const BODY_IDLE_TIMEOUT_MS = 60_000

/** After answering before a request body was read whole (an error), how long the rest is read and dropped before the connection is closed. */
export const BODY_LINGER_MS = 10_000

/** Open upload sessions at once; more is TOOMANYREQUESTS until some finish or expire. */
export const MAX_UPLOAD_SESSIONS = 1024

/** A pull-through fetch from the peer network with no progress (no provider, no bytes) for this long is abandoned. */
export const NETWORK_FETCH_IDLE_MS = 15_000

/** How long the gateway waits for the network's tag records when resolving a tag it does not know. */
export const TAG_RESOLVE_TIMEOUT_MS = 5_000

/** Descriptor sizes remembered from upstream manifests (mirror mode), so blob fetches know what to expect. */
export const UPSTREAM_SIZE_MEMORY = 10_000

/** Largest recipe accepted by the build extension (protocols/build-api.md §Submit). */
export const MAX_BUILD_RECIPE_BYTES = 1024 * 1024

/** Log kept per build for late readers; lines beyond it are still streamed live. */
export const MAX_BUILD_LOG_BYTES = 4 * 1024 * 1024

/** Finished builds remembered (status, log) before the oldest are forgotten. */
export const MAX_BUILDS_KEPT = 200

/** Manifest pulls the status page lists (./status.ts): the most recent, oldest forgotten first. */
export const MAX_RECENT_PULLS = 50

/** Lines of each build's and job's log the status JSON carries (the newest). */
export const STATUS_LOG_TAIL_LINES = 50

/** Builds and jobs the status JSON lists (the newest). */
export const STATUS_MAX_ROWS = 100
