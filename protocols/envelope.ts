/**
 * The signed envelope: how every record that crosses a trust boundary is
 * written down (see ./envelope.md, the normative text).
 *
 * This module fixes the bytes: canonical JSON, the envelope's fields, the
 * domain-separation string of each record type and the limits. It does no
 * I/O and holds no keys; signing and verifying live in src/trust.
 *
 * Terms:
 * - record type: the kind of message (`job`, `offer`, `cert`...). Each has a
 *   current version `MAJOR.MINOR` and a longest allowed validity.
 * - domain: `kiln/<type>/v<major>`, prefixed to the signed bytes so that a
 *   signature made for one record type can never be replayed as another.
 * - canonical JSON: the only byte form of a value that kiln signs or accepts.
 */
import { z } from 'zod'

// §2 limits
/** Largest encoded envelope, signature included (a job carries its recipe text). */
export const MAX_ENVELOPE_BYTES = 1024 * 1024
/** Deepest nesting of arrays and objects in canonical JSON. */
export const MAX_JSON_DEPTH = 32
/** Random bytes in a nonce; encoded as 22 base64url characters. */
export const NONCE_BYTES = 16
/** Ed25519 signature size; encoded as 86 base64url characters. */
export const SIGNATURE_BYTES = 64

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

/**
 * §4 record types: current version and the longest validity
 * (`expiresAt - issuedAt`) a verifier accepts for each.
 */
export const ENVELOPE_TYPES = {
  job: { version: '1.0', maxTtlMs: 7 * DAY },
  offer: { version: '1.0', maxTtlMs: HOUR },
  decline: { version: '1.0', maxTtlMs: HOUR },
  award: { version: '1.0', maxTtlMs: 7 * DAY },
  progress: { version: '1.0', maxTtlMs: HOUR },
  log: { version: '1.0', maxTtlMs: HOUR },
  heartbeat: { version: '1.0', maxTtlMs: 10 * MINUTE },
  cancel: { version: '1.0', maxTtlMs: DAY },
  result: { version: '1.0', maxTtlMs: 365 * DAY },
  cert: { version: '1.0', maxTtlMs: 2 * 365 * DAY },
  tag: { version: '1.0', maxTtlMs: 5 * 365 * DAY },
  capability: { version: '1.0', maxTtlMs: DAY },
  cache: { version: '1.0', maxTtlMs: 365 * DAY }
} as const satisfies Record<string, { version: string, maxTtlMs: number }>

export type EnvelopeType = keyof typeof ENVELOPE_TYPES

export const ENVELOPE_TYPE_NAMES = Object.keys(ENVELOPE_TYPES) as EnvelopeType[]

export function isEnvelopeType (value: string): value is EnvelopeType {
  return Object.hasOwn(ENVELOPE_TYPES, value)
}

/** The major version numbers a node knows, per type: today only the current one. */
export function knownMajor (type: EnvelopeType): number {
  return parseVersion(ENVELOPE_TYPES[type].version).major
}

/** `kiln/<type>/v<major>` */
export function envelopeDomain (type: EnvelopeType, major: number): string {
  return `kiln/${type}/v${major}`
}

const VERSION_RE = /^(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})$/

export function parseVersion (version: string): { major: number, minor: number } {
  const m = VERSION_RE.exec(version)
  if (m === null) throw new CanonicalJsonError(`invalid version ${JSON.stringify(version)}: expected MAJOR.MINOR`)
  return { major: Number(m[1]), minor: Number(m[2]) }
}

/** Thrown for a value or a byte string that is not canonical JSON. */
export class CanonicalJsonError extends Error {
  static override readonly name = 'CanonicalJsonError'
  override readonly name = CanonicalJsonError.name
  readonly code = 'ERR_CANONICAL_JSON'
  constructor (message: string) { super(message) }
}

/**
 * §1 canonical JSON: object keys sorted by UTF-16 code units (as JCS,
 * RFC 8785), no whitespace, integers only (safe integers: no fractions,
 * exponents, NaN or infinities), well-formed Unicode strings, `null`,
 * booleans, arrays and plain objects; `undefined` fields are refused rather
 * than dropped, so that what is signed is exactly what was meant.
 */
export function canonicalJson (value: unknown): string {
  return encode(value, 0, '$')
}

export function canonicalBytes (value: unknown): Uint8Array {
  return new TextEncoder().encode(canonicalJson(value))
}

function encode (value: unknown, depth: number, path: string): string {
  if (depth > MAX_JSON_DEPTH) throw new CanonicalJsonError(`${path}: nested deeper than ${MAX_JSON_DEPTH}`)
  if (value === null) return 'null'
  switch (typeof value) {
    case 'boolean': return value ? 'true' : 'false'
    case 'number':
      if (!Number.isSafeInteger(value)) throw new CanonicalJsonError(`${path}: ${String(value)} is not a safe integer (canonical JSON has integers only)`)
      return Object.is(value, -0) ? '0' : String(value)
    case 'string':
      if (!value.isWellFormed()) throw new CanonicalJsonError(`${path}: string is not well-formed Unicode (lone surrogate)`)
      return JSON.stringify(value)
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v, i) => encode(v, depth + 1, `${path}[${i}]`)).join(',')}]`
      const proto = Object.getPrototypeOf(value) as unknown
      if (proto !== Object.prototype && proto !== null) throw new CanonicalJsonError(`${path}: only plain objects are allowed`)
      const keys = Object.keys(value).sort()
      const parts = keys.map(k => {
        if (!k.isWellFormed()) throw new CanonicalJsonError(`${path}: key is not well-formed Unicode`)
        return `${JSON.stringify(k)}:${encode((value as Record<string, unknown>)[k], depth + 1, `${path}.${k}`)}`
      })
      return `{${parts.join(',')}}`
    }
    default:
      throw new CanonicalJsonError(`${path}: ${typeof value} is not allowed in canonical JSON`)
  }
}

/**
 * Parses bytes that must already be canonical: valid UTF-8, at most
 * `maxBytes`, and byte-identical to the canonical encoding of what they
 * parse to. That one comparison refuses duplicate keys (JSON.parse keeps
 * the last, so re-encoding differs), unsorted keys, whitespace, floats
 * (`1.0`, `1e3`) and alternative string escapes.
 */
export function parseCanonical (bytes: Uint8Array, maxBytes = MAX_ENVELOPE_BYTES): unknown {
  if (bytes.byteLength > maxBytes) throw new CanonicalJsonError(`${bytes.byteLength} bytes is over the limit of ${maxBytes}`)
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes)
  } catch {
    throw new CanonicalJsonError('not valid UTF-8')
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new CanonicalJsonError(`not JSON: ${(err as Error).message}`)
  }
  if (canonicalJson(value) !== text) throw new CanonicalJsonError('not in canonical form (key order, whitespace, number or string encoding, or a duplicate key)')
  return value
}

const B64URL_RE = /^[A-Za-z0-9_-]+$/
const PEER_ID_RE = /^[1-9A-HJ-NP-Za-km-z]{46,60}$/

/** A libp2p peer id in its base58btc string form (Ed25519: `12D3KooW...`). */
export const PeerIdString = z.string().regex(PEER_ID_RE, 'expected a base58btc peer id')

/** Milliseconds since the Unix epoch. */
export const Millis = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)

/** §3 the envelope as it travels; `payload` is checked by the record type's own schema. */
export const EnvelopeSchema = z.strictObject({
  type: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/),
  version: z.string().regex(VERSION_RE, 'expected MAJOR.MINOR'),
  signer: PeerIdString,
  issuedAt: Millis,
  expiresAt: Millis,
  nonce: z.string().length(22).regex(B64URL_RE),
  payload: z.unknown(),
  signature: z.string().length(86).regex(B64URL_RE)
})

export type Envelope<P = unknown> = Omit<z.infer<typeof EnvelopeSchema>, 'payload'> & { payload: P }

export type UnsignedEnvelope<P = unknown> = Omit<Envelope<P>, 'signature'>

/**
 * §3 the bytes an Ed25519 signature covers:
 * `UTF-8(domain) || 0x00 || canonical(envelope without signature)`.
 */
export function signingBytes (unsigned: UnsignedEnvelope): Uint8Array {
  if (!isEnvelopeType(unsigned.type)) throw new CanonicalJsonError(`unknown record type ${JSON.stringify(unsigned.type)}`)
  const domain = new TextEncoder().encode(envelopeDomain(unsigned.type, parseVersion(unsigned.version).major))
  const body = canonicalBytes({
    type: unsigned.type,
    version: unsigned.version,
    signer: unsigned.signer,
    issuedAt: unsigned.issuedAt,
    expiresAt: unsigned.expiresAt,
    nonce: unsigned.nonce,
    payload: unsigned.payload
  })
  const out = new Uint8Array(domain.byteLength + 1 + body.byteLength)
  out.set(domain, 0)
  out[domain.byteLength] = 0
  out.set(body, domain.byteLength + 1)
  return out
}

/** The wire form of a signed envelope: its canonical JSON bytes. */
export function encodeEnvelope (envelope: Envelope): Uint8Array {
  const bytes = canonicalBytes(envelope)
  if (bytes.byteLength > MAX_ENVELOPE_BYTES) throw new CanonicalJsonError(`envelope of ${bytes.byteLength} bytes is over the limit of ${MAX_ENVELOPE_BYTES}`)
  return bytes
}

/**
 * The DHT value of a signed record (tag and cache records, protocols/tag.md
 * §2 and protocols/cache.md §2): canonical JSON of the envelope and the
 * signer's certificates, both checked by the reader. One codec per record
 * kind, with its own limits.
 */
export function signedRecordCodec (kind: string, limits: { maxBytes: number, maxCertificates: number }) {
  const schema = z.strictObject({
    envelope: z.unknown(),
    certificates: z.array(z.unknown()).max(limits.maxCertificates)
  })
  type Value = z.infer<typeof schema>
  return {
    schema,
    encode: (value: Value): Uint8Array => {
      const bytes = canonicalBytes(value)
      if (bytes.byteLength > limits.maxBytes) throw new RangeError(`${kind} record is ${bytes.byteLength} bytes, over the limit of ${limits.maxBytes}`)
      return bytes
    },
    /** Parses the wire form (size, canonical form, shape); the envelope inside is not verified here. */
    decode: (bytes: Uint8Array): Value => schema.parse(parseCanonical(bytes, limits.maxBytes))
  }
}
