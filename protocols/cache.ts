/**
 * The cache record: "the build step with key K gives this layer", signed by
 * the builder that ran it and stored in the DHT, so that a builder trusting
 * the signer skips the step and fetches the layer by digest instead (see
 * ./cache.md, the normative text).
 *
 * This module fixes the bytes and the keys: the payload (carried in a
 * `cache` envelope, ./envelope.md), the DHT value that wraps it with the
 * signer's certificates, the DHT key of one signer's record for a step and
 * the discovery key under which signers announce it. No I/O, no keys:
 * signing, checking and resolving live in src/p2p/cache-records.ts.
 *
 * Terms:
 * - step key: the builder's cache key of a filesystem step (RUN, COPY/ADD,
 *   Apptainer files): a sha256 of its parent's key, its canonical text and
 *   its inputs (src/builder/cache.ts stepKey). Equal keys mean equal steps.
 * - signer: the builder whose key signed the envelope; each signer has its
 *   own record per step key.
 */
import { z } from 'zod'
import { discoveryCid } from './capability.ts'
import { PeerIdString, signedRecordCodec } from './envelope.ts'

/** §2 DHT namespace: records live under `/kiln-cache/<key hex>/<signer>`. */
export const CACHE_NAMESPACE = 'kiln-cache'
/** §2 prefix of the discovery string provided by every signer of a step key. */
export const CACHE_KEY_PREFIX = 'kiln/cache/'
/** §2 largest DHT value (envelope plus certificates). */
export const CACHE_RECORD_MAX_BYTES = 64 * 1024
/** §2 most certificates carried beside the envelope. */
export const CACHE_MAX_CERTIFICATES = 4
/** §4 validity a publisher gives its record unless told otherwise (the envelope type allows up to 365 days). */
export const CACHE_DEFAULT_TTL_MS = 30 * 24 * 60 * 60 * 1000
/** §5 the role that makes a signer's cache records count: only builders a node trusts to build for it. */
export const CACHE_SIGNER_ROLE = 'builder'
/** §1 the most environment entries a config delta may carry. */
export const CACHE_MAX_ENV = 256

const Sha256 = z.string().regex(/^sha256:[a-f0-9]{64}$/)

/** §1 the layer the step gave. */
export const CacheLayerSchema = z.strictObject({
  mediaType: z.string().min(1).max(255),
  digest: Sha256,
  size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
})

/**
 * §1 what the step changed in the image config besides the layer. kiln's
 * filesystem steps change none today (config steps are replayed from the
 * recipe, not cached), so publishers omit it; readers that find one must
 * refuse the record unless they apply it.
 */
export const CacheConfigDeltaSchema = z.strictObject({
  env: z.array(z.string().max(4096)).max(CACHE_MAX_ENV).optional(),
  workingDir: z.string().max(4096).optional(),
  user: z.string().max(255).optional()
})

/** §1 the payload of a `cache` envelope. */
export const CachePayloadSchema = z.strictObject({
  key: Sha256,
  layer: CacheLayerSchema,
  diffId: Sha256,
  config: CacheConfigDeltaSchema.optional(),
  seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
})
export type CachePayload = z.infer<typeof CachePayloadSchema>

/** §2 the DHT value: canonical JSON of the envelope and the signer's certificates (both checked by the reader). */
const cacheRecordCodec = signedRecordCodec('cache', { maxBytes: CACHE_RECORD_MAX_BYTES, maxCertificates: CACHE_MAX_CERTIFICATES })
export const CacheRecordValueSchema = cacheRecordCodec.schema
export type CacheRecordValue = z.infer<typeof CacheRecordValueSchema>
export const encodeCacheRecordValue = cacheRecordCodec.encode
/** Parses the wire form (size, canonical form, shape); the envelope inside is not verified here. */
export const decodeCacheRecordValue = cacheRecordCodec.decode

/** §2 the DHT key of one signer's record for a step key: UTF-8 `/kiln-cache/<key hex>/<signer>`. */
export function cacheDhtKey (stepKey: string, signer: string): Uint8Array {
  return new TextEncoder().encode(`/${CACHE_NAMESPACE}/${Sha256.parse(stepKey).slice('sha256:'.length)}/${signer}`)
}

/** The step key and signer a DHT key names, or undefined if it is not a cache key. */
export function parseCacheDhtKey (key: Uint8Array): { stepKey: string, signer: string } | undefined {
  const m = /^\/kiln-cache\/([a-f0-9]{64})\/([^/]+)$/.exec(new TextDecoder().decode(key))
  if (m === null || !PeerIdString.safeParse(m[2]).success) return undefined
  return { stepKey: `sha256:${m[1] as string}`, signer: m[2] as string }
}

/** §2 the discovery key: CIDv1(raw, sha2-256) of `kiln/cache/<step key>`, provided by every signer of that step. */
export function cacheDiscoveryCid (stepKey: string): ReturnType<typeof discoveryCid> {
  return discoveryCid(`${CACHE_KEY_PREFIX}${Sha256.parse(stepKey)}`)
}
