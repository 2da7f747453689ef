/** Limits and defaults of src/trust; the envelope limits themselves are in protocols/envelope.ts §2. */

/** Clock difference tolerated between signer and verifier (protocols/envelope.md §2). */
export const DEFAULT_CLOCK_SKEW_MS = 60_000

/** Nonces remembered by a replay cache before it starts forgetting the oldest (envelope.md §5). */
export const DEFAULT_REPLAY_CACHE_ENTRIES = 100_000

/** Validity of an envelope when the signer does not say. */
export const DEFAULT_TTL_MS = 10 * 60_000

/** Validity of a membership certificate when `kiln trust issue` is not told. */
export const DEFAULT_CERT_TTL_MS = 90 * 24 * 60 * 60_000

/** File names in `<dataDir>/trust/`. */
export const TRUST_DIR = 'trust'
export const POLICY_FILE = 'trust.yaml'
export const ROOT_KEY_FILE = 'root.key'
export const ROOT_PUBLIC_FILE = 'root.pub.yaml'
export const CERTS_DIR = 'certs'
