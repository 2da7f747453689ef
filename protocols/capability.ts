/**
 * The capability record: what an agent can build, signed by the agent and
 * stored in the DHT under its own key (see ./capability.md, the normative text).
 *
 * This module fixes the bytes and the keys: schemas, the signed form, the DHT
 * key of a peer's record and the discovery keys of platforms and
 * capabilities. It does no I/O and holds no keys; signing and checking live
 * in src/p2p/capability-record.ts.
 *
 * Terms:
 * - platform: `os/arch[/variant]` as OCI writes it (`linux/amd64`, `linux/arm64`).
 * - capability: a short name an agent offers beyond its platforms (`gpu`,
 *   `cuda`, `mpi`, `fakeroot`, `sandbox-bwrap`); details such as versions sit
 *   in `details`.
 * - seq: a per-agent counter; of two valid records the higher seq wins.
 * - emulated platform: one the agent runs through binfmt_misc (qemu); it is
 *   provided under the same platform key as a native one, and the record's
 *   `emulated` list tells a searcher which it is.
 */
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createMultihash } from 'multiformats/hashes/digest'
import { z } from 'zod'
import { canonicalBytes, parseCanonical } from './envelope.ts'
import {
  AGENT_KEY, CAPABILITY_DOMAIN, CAPABILITY_KEY_PREFIX, CAPABILITY_MAX_BYTES, CAPABILITY_MAX_FEATURES,
  CAPABILITY_MAX_LIST, CAPABILITY_NAMESPACE, PLATFORM_KEY_PREFIX
} from './constants.ts'

const SHA2_256 = 0x12

/**
 * §5 the direct read: a searcher asks an agent for its current signed record
 * on this protocol (the owner's copy, without a DHT walk). Kept here rather
 * than in ./constants.ts so the record and its exchange change together.
 */
export const CAPABILITY_PROTOCOL = '/kiln/capability/1.0.0'
/** §5 longest a server waits to write its record, and a client to read it. */
export const CAPABILITY_READ_TIMEOUT_MS = 5000
/** §5 concurrent inbound record reads an agent serves per connection. */
export const CAPABILITY_MAX_INBOUND_STREAMS = 8
const PEER_ID_RE = /^[1-9A-HJ-NP-Za-km-z]{46,60}$/
const TOKEN_RE = /^[a-z0-9][a-z0-9._+-]{0,63}$/
const PLATFORM_RE = /^[a-z0-9_.-]{1,32}\/[a-z0-9_.-]{1,32}(\/[a-z0-9_.-]{1,32})?$/
const B64URL_RE = /^[A-Za-z0-9_-]+$/

const Millis = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const Token = z.string().regex(TOKEN_RE, 'expected a lowercase name of letters, digits and . _ + - (at most 64)')
/** §2 a capability or CPU feature name, as searched for (`gpu`, `cuda`, `avx2`). */
export const CapabilityName = Token
export const PlatformString = z.string().regex(PLATFORM_RE, 'expected os/arch[/variant]')

/** §2.1 one platform the agent builds natively. */
export const CapabilityPlatformSchema = z.strictObject({
  platform: PlatformString,
  /** CPU features as /proc/cpuinfo names them (`avx2`, `avx512f`, `sve`). */
  features: z.array(Token).max(CAPABILITY_MAX_FEATURES)
})

export const GpuSchema = z.strictObject({
  vendor: Token,
  model: z.string().min(1).max(128),
  memoryMiB: Count
})

/** §2.2 details of the capabilities named in `capabilities`. */
export const CapabilityDetailsSchema = z.strictObject({
  gpus: z.array(GpuSchema).max(CAPABILITY_MAX_LIST).optional(),
  cuda: z.string().max(32).optional(),
  mpi: z.string().max(64).optional(),
  sandbox: Token.optional()
})

/** §2 the record body; what is signed. */
export const CapabilityRecordSchema = z.strictObject({
  v: z.literal(1),
  peerId: z.string().regex(PEER_ID_RE, 'expected a base58btc peer id'),
  seq: Count,
  issuedAt: Millis,
  expiresAt: Millis,
  platforms: z.array(CapabilityPlatformSchema).min(1).max(CAPABILITY_MAX_LIST),
  emulated: z.array(PlatformString).max(CAPABILITY_MAX_LIST),
  capabilities: z.array(Token).max(CAPABILITY_MAX_LIST),
  details: CapabilityDetailsSchema,
  limits: z.strictObject({ cpus: Count, memoryBytes: Count, diskBytes: Count }),
  queue: z.strictObject({ queued: Count, running: Count }),
  institution: z.string().max(128).optional(),
  addresses: z.array(z.string().min(1).max(256)).max(CAPABILITY_MAX_LIST)
})
export type CapabilityRecord = z.infer<typeof CapabilityRecordSchema>

/** §3 the value stored in the DHT: the record and an Ed25519 signature, base64url. */
export const SignedCapabilityRecordSchema = z.strictObject({
  record: CapabilityRecordSchema,
  signature: z.string().length(86).regex(B64URL_RE)
})
export type SignedCapabilityRecord = z.infer<typeof SignedCapabilityRecordSchema>

/** §3 the bytes the signature covers: `UTF-8(domain) || 0x00 || canonical(record)`. */
export function capabilitySigningBytes (record: CapabilityRecord): Uint8Array {
  const domain = new TextEncoder().encode(CAPABILITY_DOMAIN)
  const body = canonicalBytes(record)
  const out = new Uint8Array(domain.byteLength + 1 + body.byteLength)
  out.set(domain, 0)
  out.set(body, domain.byteLength + 1)
  return out
}

/** §3 the wire form: canonical JSON of `{ record, signature }`. */
export function encodeSignedCapability (signed: SignedCapabilityRecord): Uint8Array {
  const bytes = canonicalBytes(signed)
  if (bytes.byteLength > CAPABILITY_MAX_BYTES) throw new RangeError(`capability record is ${bytes.byteLength} bytes, over the limit of ${CAPABILITY_MAX_BYTES}`)
  return bytes
}

/** Parses the wire form (size, canonical form, schema); the signature is not checked here. */
export function decodeSignedCapability (bytes: Uint8Array): SignedCapabilityRecord {
  return SignedCapabilityRecordSchema.parse(parseCanonical(bytes, CAPABILITY_MAX_BYTES))
}

/** §1 the DHT key of a peer's record: UTF-8 `/kiln-cap/<peerId>`. */
export function capabilityDhtKey (peerId: string): Uint8Array {
  return new TextEncoder().encode(`/${CAPABILITY_NAMESPACE}/${peerId}`)
}

/** The peer id a DHT key names, or undefined if the key is not a capability key. */
export function peerIdOfCapabilityKey (key: Uint8Array): string | undefined {
  const text = new TextDecoder().decode(key)
  const prefix = `/${CAPABILITY_NAMESPACE}/`
  if (!text.startsWith(prefix)) return undefined
  const id = text.slice(prefix.length)
  return PEER_ID_RE.test(id) ? id : undefined
}

/** §4 CIDv1(raw, sha2-256) of a discovery string. */
export function discoveryCid (text: string): CID {
  const hash = createHash('sha256').update(text).digest()
  return CID.createV1(raw.code, createMultihash(SHA2_256, hash))
}

/** §4 the key of a platform, native or emulated (the record says which). */
export function platformCid (platform: string): CID {
  return discoveryCid(`${PLATFORM_KEY_PREFIX}${PlatformString.parse(platform)}`)
}

export function capabilityCid (capability: string): CID {
  return discoveryCid(`${CAPABILITY_KEY_PREFIX}${Token.parse(capability)}`)
}

export function agentCid (): CID {
  return discoveryCid(AGENT_KEY)
}

/** §4 the names a record is found by as capabilities: its capabilities and the CPU features of its native platforms. */
export function capabilityNames (record: Pick<CapabilityRecord, 'platforms' | 'capabilities'>): string[] {
  return [...new Set([...record.capabilities, ...record.platforms.flatMap(p => p.features)])]
}

/** §4 every key an agent provides for its record: the agent key, each native and emulated platform, each capability name. */
export function discoveryCids (record: Pick<CapabilityRecord, 'platforms' | 'emulated' | 'capabilities'>): CID[] {
  const platforms = new Set([...record.platforms.map(p => p.platform), ...record.emulated])
  return [agentCid(), ...[...platforms].map(p => platformCid(p)), ...capabilityNames(record).map(c => capabilityCid(c))]
}

/** §4 whether a record meets a search: every criterion given must hold. */
export function matchesCapabilityQuery (record: CapabilityRecord, query: { platform?: string, capability?: string, nativeOnly?: boolean }): boolean {
  if (query.platform !== undefined) {
    const native = record.platforms.some(p => p.platform === query.platform)
    if (!native && (query.nativeOnly === true || !record.emulated.includes(query.platform))) return false
  }
  return query.capability === undefined || capabilityNames(record).includes(query.capability)
}
