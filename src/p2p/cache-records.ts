/**
 * Signed step-cache records on the DHT (protocols/cache.md): signing and
 * publishing one (put under the signer's key + provide the step key's
 * discovery key), the DHT validator and selector for the `kiln-cache`
 * namespace, and the resolver that returns, among the signers a trust
 * policy allows as `builder`, the newest record for a step key.
 *
 * @example
 * ```ts
 * await publishCacheRecord(node, privateKey, { key, layer, diffId })
 * const found = await resolveCacheRecord(node, key, { trust: policy })
 * // found?.payload.layer.digest: fetch it by digest (src/transfer)
 * ```
 */
import { findSigners, putAndProvide, readSignerRecord, selectNewestRecord } from './signed-record.ts'
import type { PrivateKey } from '@libp2p/interface'
import {
  CACHE_DEFAULT_TTL_MS, CACHE_SIGNER_ROLE, CachePayloadSchema, cacheDhtKey, cacheDiscoveryCid, decodeCacheRecordValue,
  encodeCacheRecordValue, parseCacheDhtKey
} from '../../protocols/cache.ts'
import type { CachePayload } from '../../protocols/cache.ts'
import type { Envelope } from '../../protocols/envelope.ts'
import { signEnvelope, verifyEnvelope } from '../trust/envelope.ts'
import type { KilnNode } from './node.ts'

export class InvalidCacheRecordError extends Error {
  static override readonly name = 'InvalidCacheRecordError'
  override readonly name = InvalidCacheRecordError.name
  readonly code = 'ERR_INVALID_CACHE_RECORD'
  constructor (message: string, options?: ErrorOptions) { super(message, options) }
}

/** What a record asserts: the payload without seq. */
export type CacheEntry = Omit<CachePayload, 'seq'>

/** A verified record with the certificates its signer presented (still unverified: the trust policy checks them). */
export interface VerifiedCacheRecord {
  envelope: Envelope<CachePayload>
  payload: CachePayload
  signer: string
  certificates: unknown[]
}

/** The part of a TrustPolicy the resolver needs (src/trust TrustPolicy fits). */
export interface CacheTrust {
  allows: (peerId: string, role: typeof CACHE_SIGNER_ROLE, certs?: readonly unknown[]) => Promise<{ ok: boolean, reason: string }>
}

export interface PublishCacheOptions {
  /** The signer's federation certificates, carried beside the envelope. */
  certificates?: unknown[]
  /** Default CACHE_DEFAULT_TTL_MS. */
  ttlMs?: number
  /** Default: the signing time in ms. */
  seq?: number
  now?: number
  signal?: AbortSignal
}

export async function signCacheRecord (privateKey: PrivateKey, entry: CacheEntry, options: PublishCacheOptions = {}): Promise<{ record: VerifiedCacheRecord, value: Uint8Array }> {
  const now = options.now ?? Date.now()
  const payload = CachePayloadSchema.parse({ ...entry, seq: options.seq ?? now })
  const envelope = await signEnvelope(privateKey, 'cache', payload, { ttlMs: options.ttlMs ?? CACHE_DEFAULT_TTL_MS, now })
  const certificates = options.certificates ?? []
  const value = encodeCacheRecordValue({ envelope, certificates })
  return { record: { envelope, payload, signer: envelope.signer, certificates }, value }
}

/**
 * Parses and checks DHT value bytes: size, canonical form, the envelope's
 * signature and validity, the payload, and (given a key) that the key names
 * this record's step key and signer. Throws InvalidCacheRecordError.
 */
export async function verifyCacheRecord (value: Uint8Array, options: { key?: Uint8Array, now?: number } = {}): Promise<VerifiedCacheRecord> {
  let decoded
  let envelope: Envelope<CachePayload>
  try {
    decoded = decodeCacheRecordValue(value)
    envelope = await verifyEnvelope(decoded.envelope, { type: 'cache', payload: CachePayloadSchema, ...(options.now === undefined ? {} : { now: options.now }) })
  } catch (err) {
    throw new InvalidCacheRecordError(`invalid cache record: ${(err as Error).message}`, { cause: err })
  }
  if (options.key !== undefined) {
    const key = parseCacheDhtKey(options.key)
    if (key === undefined) throw new InvalidCacheRecordError('not a /kiln-cache/<key hex>/<signer> key')
    if (key.signer !== envelope.signer) throw new InvalidCacheRecordError(`record signed by ${envelope.signer}, stored under ${key.signer}`)
    if (key.stepKey !== envelope.payload.key) throw new InvalidCacheRecordError(`record for step ${envelope.payload.key} stored under another step's key`)
  }
  return { envelope, payload: envelope.payload, signer: envelope.signer, certificates: decoded.certificates }
}

/** DHT validator for `/kiln-cache/<key hex>/<signer>`: throws unless the value is that signer's valid record for that step. */
export async function validateCacheRecord (key: Uint8Array, value: Uint8Array): Promise<void> {
  await verifyCacheRecord(value, { key })
}

/** DHT selector: the valid record with the highest seq (then the latest issuedAt); invalid ones never win. */
export async function selectCacheRecord (key: Uint8Array, values: Uint8Array[]): Promise<number> {
  return await selectNewestRecord(values, async value => await verifyCacheRecord(value, { key }))
}

/**
 * Signs and publishes a cache record: a DHT put under this node's key for
 * the step, and a provide of the step's discovery key. Returns how many
 * peers stored the record (the local DHT keeps it whatever that number).
 */
export async function publishCacheRecord (node: KilnNode, privateKey: PrivateKey, entry: CacheEntry, options: PublishCacheOptions = {}): Promise<{ record: VerifiedCacheRecord, storedOn: number }> {
  const { record, value } = await signCacheRecord(privateKey, entry, options)
  const storedOn = await putAndProvide(node, cacheDhtKey(entry.key, record.signer), value, cacheDiscoveryCid(entry.key), options.signal)
  return { record, storedOn }
}

export interface ResolveCacheOptions {
  /** Who counts; required: a cache record is only as good as its signer. */
  trust: CacheTrust
  /** Bounds the whole resolution; default 5 s. */
  timeoutMs?: number
  signal?: AbortSignal
  /** Most signers read; default 8. */
  maxSigners?: number
  /** Called for each record skipped, with why (untrusted signer, invalid record). */
  onSkip?: (signer: string, reason: string) => void
}

/**
 * Resolves a step key through the network's cache records: finds the
 * signers that provide it (not this node: its own cache is local), reads
 * each one's record, keeps those whose signer the trust policy allows as
 * `builder`, and returns the most recently issued. Undefined when no trusted
 * record is found in time.
 */
export async function resolveCacheRecord (node: KilnNode, stepKey: string, options: ResolveCacheOptions): Promise<VerifiedCacheRecord | undefined> {
  const signal = AbortSignal.any([AbortSignal.timeout(options.timeoutMs ?? 5_000), ...(options.signal === undefined ? [] : [options.signal])])
  const signers = await findSigners(node, cacheDiscoveryCid(stepKey), { maxSigners: options.maxSigners ?? 8, includeSelf: false, signal })
  let best: VerifiedCacheRecord | undefined
  await Promise.all(signers.map(async signer => {
    const key = cacheDhtKey(stepKey, signer)
    // One signer's record: the first valid answer is enough (records of a signer for a key never differ in what they assert).
    const record = await readSignerRecord(node, key, async value => await verifyCacheRecord(value, { key }), signal, true)
      .catch(err => { options.onSkip?.(signer, (err as Error).message); return undefined })
    if (record === undefined) return
    const decision = await options.trust.allows(signer, CACHE_SIGNER_ROLE, record.certificates)
    if (!decision.ok) { options.onSkip?.(signer, decision.reason); return }
    if (best === undefined || record.envelope.issuedAt > best.envelope.issuedAt) best = record
  }))
  return best
}
