/**
 * Signed tag records on the DHT (protocols/tag.md): signing and publishing
 * one (put under the signer's key + provide the name's discovery key), the
 * DHT validator and selector for the `kiln-tag` namespace, and the resolver
 * that picks, among the signers a trust policy allows, the newest record.
 *
 * @example
 * ```ts
 * await publishTagRecord(node, privateKey, { repository: 'hpc/app', tag: 'v1', digest, mediaType, size })
 * const found = await resolveTagRecord(node, 'hpc/app', 'v1', { trust: policy })
 * // found?.payload.digest
 * ```
 */
import { findSigners, putAndProvide, readSignerRecord, selectNewestRecord } from './signed-record.ts'
import type { PrivateKey } from '@libp2p/interface'
import {
  TAG_DEFAULT_TTL_MS, TAG_SIGNER_ROLES, TagPayloadSchema, decodeTagRecordValue, encodeTagRecordValue,
  parseTagDhtKey, tagDhtKey, tagDiscoveryCid, tagNameHash
} from '../../protocols/tag.ts'
import type { TagPayload } from '../../protocols/tag.ts'
import type { Envelope } from '../../protocols/envelope.ts'
import { signEnvelope, verifyEnvelope } from '../trust/envelope.ts'
import type { KilnNode } from './node.ts'

export class InvalidTagRecordError extends Error {
  static override readonly name = 'InvalidTagRecordError'
  override readonly name = InvalidTagRecordError.name
  readonly code = 'ERR_INVALID_TAG_RECORD'
  constructor (message: string, options?: ErrorOptions) { super(message, options) }
}

/** What a tag names: the fields of the payload other than seq. */
export interface TagTarget {
  repository: string
  tag: string
  digest: string
  mediaType: string
  size: number
}

/** A verified record with the certificates its signer presented (still unverified: the trust policy checks them). */
export interface VerifiedTagRecord {
  envelope: Envelope<TagPayload>
  payload: TagPayload
  signer: string
  certificates: unknown[]
}

/** The part of a TrustPolicy the resolver needs (src/trust TrustPolicy fits). */
export interface TagTrust {
  allows: (peerId: string, role: 'builder' | 'gateway', certs?: readonly unknown[]) => Promise<{ ok: boolean, reason: string }>
}

export interface PublishTagOptions {
  /** The signer's federation certificates, carried beside the envelope. */
  certificates?: unknown[]
  /** Default TAG_DEFAULT_TTL_MS. */
  ttlMs?: number
  /** Default: the signing time in ms (monotonic across restarts without state). */
  seq?: number
  now?: number
  signal?: AbortSignal
}

export interface PublishedTag {
  record: VerifiedTagRecord
  /** The DHT value bytes. */
  value: Uint8Array
  /** Peers (besides this one) that stored the record. */
  storedOn: number
}

/** Signs a tag record with privateKey; returns the DHT value bytes and the record. */
export async function signTagRecord (privateKey: PrivateKey, target: TagTarget, options: PublishTagOptions = {}): Promise<{ record: VerifiedTagRecord, value: Uint8Array }> {
  const now = options.now ?? Date.now()
  const payload = TagPayloadSchema.parse({ ...target, seq: options.seq ?? now })
  const envelope = await signEnvelope(privateKey, 'tag', payload, { ttlMs: options.ttlMs ?? TAG_DEFAULT_TTL_MS, now })
  const certificates = options.certificates ?? []
  const value = encodeTagRecordValue({ envelope, certificates })
  return { record: { envelope, payload, signer: envelope.signer, certificates }, value }
}

/**
 * Parses and checks DHT value bytes: size, canonical form, the envelope's
 * signature and validity, the payload, and (given a key) that the key names
 * this record's repository:tag and signer. Throws InvalidTagRecordError.
 */
export async function verifyTagRecord (value: Uint8Array, options: { key?: Uint8Array, now?: number } = {}): Promise<VerifiedTagRecord> {
  let decoded
  let envelope: Envelope<TagPayload>
  try {
    decoded = decodeTagRecordValue(value)
    envelope = await verifyEnvelope(decoded.envelope, { type: 'tag', payload: TagPayloadSchema, ...(options.now === undefined ? {} : { now: options.now }) })
  } catch (err) {
    throw new InvalidTagRecordError(`invalid tag record: ${(err as Error).message}`, { cause: err })
  }
  if (options.key !== undefined) {
    const key = parseTagDhtKey(options.key)
    if (key === undefined) throw new InvalidTagRecordError('not a /kiln-tag/<name hash>/<signer> key')
    if (key.signer !== envelope.signer) throw new InvalidTagRecordError(`record signed by ${envelope.signer}, stored under ${key.signer}`)
    if (key.nameHash !== tagNameHash(envelope.payload.repository, envelope.payload.tag)) {
      throw new InvalidTagRecordError(`record for ${envelope.payload.repository}:${envelope.payload.tag} stored under another name's key`)
    }
  }
  return { envelope, payload: envelope.payload, signer: envelope.signer, certificates: decoded.certificates }
}

/** DHT validator for `/kiln-tag/<name hash>/<signer>`: throws unless the value is that signer's valid record for that name. */
export async function validateTagRecord (key: Uint8Array, value: Uint8Array): Promise<void> {
  await verifyTagRecord(value, { key })
}

/** DHT selector: the valid record with the highest seq (then the latest issuedAt); invalid ones never win. */
export async function selectTagRecord (key: Uint8Array, values: Uint8Array[]): Promise<number> {
  return await selectNewestRecord(values, async value => await verifyTagRecord(value, { key }))
}

/**
 * Signs and publishes a tag record: a DHT put under this node's key for the
 * name, and a provide of the name's discovery key so resolvers find this
 * signer. The record is stored locally whatever the network achieves;
 * `storedOn` says how many peers took it.
 */
export async function publishTagRecord (node: KilnNode, privateKey: PrivateKey, target: TagTarget, options: PublishTagOptions = {}): Promise<PublishedTag> {
  const { record, value } = await signTagRecord(privateKey, target, options)
  const storedOn = await putAndProvide(node, tagDhtKey(target.repository, target.tag, record.signer), value, tagDiscoveryCid(target.repository, target.tag), options.signal)
  return { record, value, storedOn }
}

export interface ResolveTagOptions {
  /** Who counts; absent: every valid record counts (an open policy). */
  trust?: TagTrust
  /** Bounds the whole resolution; default 10 s. */
  timeoutMs?: number
  signal?: AbortSignal
  /** Most signers read; default 16. */
  maxSigners?: number
  /** Called for each record skipped, with why (untrusted signer, invalid record). */
  onSkip?: (signer: string, reason: string) => void
}

/**
 * Resolves `repository:tag` through the network's tag records: finds the
 * signers that provide the name, reads each one's record, keeps those whose
 * signer the trust policy allows as `builder` or `gateway`, and returns the
 * most recently issued. Undefined when no trusted record is found in time.
 */
export async function resolveTagRecord (node: KilnNode, repository: string, tag: string, options: ResolveTagOptions = {}): Promise<VerifiedTagRecord | undefined> {
  const signal = AbortSignal.any([AbortSignal.timeout(options.timeoutMs ?? 10_000), ...(options.signal === undefined ? [] : [options.signal])])
  const signers = await findSigners(node, tagDiscoveryCid(repository, tag), { maxSigners: options.maxSigners ?? 16, includeSelf: true, signal })
  const candidates = await Promise.all(signers.map(async signer => {
    const key = tagDhtKey(repository, tag, signer)
    // The newest of the signer's records for the name (a re-tag replaces the old one).
    return await readSignerRecord(node, key, async value => await verifyTagRecord(value, { key }), signal)
      .catch(err => { options.onSkip?.(signer, (err as Error).message); return undefined })
  }))
  let best: VerifiedTagRecord | undefined
  for (const record of candidates) {
    if (record === undefined) continue
    if (options.trust !== undefined && !await trusted(options.trust, record, options.onSkip)) continue
    if (best === undefined || record.envelope.issuedAt > best.envelope.issuedAt) best = record
  }
  return best
}

async function trusted (trust: TagTrust, record: VerifiedTagRecord, onSkip?: (signer: string, reason: string) => void): Promise<boolean> {
  const reasons: string[] = []
  for (const role of TAG_SIGNER_ROLES) {
    const decision = await trust.allows(record.signer, role, record.certificates)
    if (decision.ok) return true
    reasons.push(decision.reason)
  }
  onSkip?.(record.signer, reasons.join('; '))
  return false
}
