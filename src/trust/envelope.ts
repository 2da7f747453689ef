/**
 * Signing and verifying envelopes (protocols/envelope.md). The signer's
 * public key is read from its peer id, so an envelope is self-contained:
 * verifying proves who signed it, never whether to trust them (that is
 * the TrustPolicy's job).
 */
import { randomBytes } from 'node:crypto'
import type { z } from 'zod'
import {
  CanonicalJsonError, ENVELOPE_TYPES, EnvelopeSchema, MAX_ENVELOPE_BYTES, NONCE_BYTES,
  canonicalBytes, knownMajor, parseCanonical, parseVersion, signingBytes
} from '../../protocols/envelope.ts'
import type { Envelope, EnvelopeType, UnsignedEnvelope } from '../../protocols/envelope.ts'
import { DEFAULT_CLOCK_SKEW_MS, DEFAULT_TTL_MS } from './constants.ts'
import {
  BadSignatureError, EnvelopeInvalidError, ExpiredError, KeyFileError, NotYetValidError,
  ReplayError, UnknownVersionError, WrongTypeError
} from './errors.ts'
import { fromBase64url, peerIdOf, publicKeyFromPeerId, toBase64url } from './keys.ts'
import type { PrivateKey } from '@libp2p/interface'
import type { ReplayCache } from './replay-cache.ts'

export interface SignOptions {
  /** Validity from `now`; default 10 minutes, at most the type's limit (envelope.md §4). */
  ttlMs?: number
  /** Signing time in ms; default Date.now(). */
  now?: number
}

export async function signEnvelope<P> (privateKey: PrivateKey, type: EnvelopeType, payload: P, options: SignOptions = {}): Promise<Envelope<P>> {
  if (privateKey.type !== 'Ed25519') throw new KeyFileError(`kiln signs with Ed25519 keys, not ${privateKey.type}`)
  const spec = ENVELOPE_TYPES[type]
  const now = options.now ?? Date.now()
  const ttl = options.ttlMs ?? Math.min(DEFAULT_TTL_MS, spec.maxTtlMs)
  if (!Number.isSafeInteger(ttl) || ttl <= 0 || ttl > spec.maxTtlMs) {
    throw new EnvelopeInvalidError(`a ${type} envelope may be valid for 1 ms to ${spec.maxTtlMs} ms, not ${ttl}`)
  }
  const unsigned: UnsignedEnvelope<P> = {
    type,
    version: spec.version,
    signer: peerIdOf(privateKey),
    issuedAt: now,
    expiresAt: now + ttl,
    nonce: toBase64url(randomBytes(NONCE_BYTES)),
    payload
  }
  let bytes
  try {
    bytes = signingBytes(unsigned)
  } catch (err) {
    if (err instanceof CanonicalJsonError) throw new EnvelopeInvalidError(`cannot sign: ${err.message}`)
    throw err
  }
  const signature = toBase64url(await privateKey.sign(bytes))
  const envelope = { ...unsigned, signature }
  if (canonicalBytes(envelope).byteLength > MAX_ENVELOPE_BYTES) throw new EnvelopeInvalidError(`${type} envelope is over the limit of ${MAX_ENVELOPE_BYTES} bytes`)
  return envelope
}

export interface VerifyOptions<P> {
  /** The record type expected in this context; any other is refused with WrongTypeError. */
  type: EnvelopeType
  /** Verification time in ms; default Date.now(). */
  now?: number
  /** Default 60 s. */
  clockSkewMs?: number
  /** When given, a nonce seen before is refused with ReplayError. Leave out for records presented many times (certificates). */
  replayCache?: ReplayCache
  /** The payload schema; its output becomes `payload` of the result. */
  payload?: z.ZodType<P>
}

/**
 * Verifies an envelope given as its wire bytes, as a string, or as an
 * already parsed value (e.g. nested in another message). Throws, in the
 * order of envelope.md §5: EnvelopeInvalidError, WrongTypeError,
 * UnknownVersionError, BadSignatureError, EnvelopeInvalidError (validity
 * span), NotYetValidError, ExpiredError, EnvelopeInvalidError (payload),
 * ReplayError.
 */
export async function verifyEnvelope<P = unknown> (input: Uint8Array | string | unknown, options: VerifyOptions<P>): Promise<Envelope<P>> {
  const now = options.now ?? Date.now()
  const skew = options.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS

  let value: unknown = input
  try {
    if (typeof input === 'string') value = parseCanonical(new TextEncoder().encode(input))
    else if (input instanceof Uint8Array) value = parseCanonical(input)
    else if (canonicalBytes(input).byteLength > MAX_ENVELOPE_BYTES) throw new CanonicalJsonError(`envelope is over the limit of ${MAX_ENVELOPE_BYTES} bytes`)
  } catch (err) {
    if (err instanceof CanonicalJsonError) throw new EnvelopeInvalidError(err.message)
    throw err
  }
  const parsed = EnvelopeSchema.safeParse(value)
  if (!parsed.success) throw new EnvelopeInvalidError(`not an envelope: ${parsed.error.issues.map(i => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`)
  const env = parsed.data

  if (env.type !== options.type) throw new WrongTypeError(options.type, env.type)
  const known = knownMajor(options.type)
  if (parseVersion(env.version).major !== known) throw new UnknownVersionError(env.type, env.version, known)

  let publicKey
  try {
    publicKey = publicKeyFromPeerId(env.signer)
  } catch (err) {
    if (err instanceof KeyFileError) throw new BadSignatureError(`signer: ${err.message}`)
    throw err
  }
  const signature = fromBase64url(env.signature)
  const { signature: _omit, ...unsigned } = env
  if (signature.byteLength !== 64 || !(await publicKey.verify(signingBytes(unsigned), signature))) {
    throw new BadSignatureError(`${env.type} envelope signature does not verify for signer ${env.signer}`)
  }

  const maxTtl = ENVELOPE_TYPES[options.type].maxTtlMs
  if (env.expiresAt <= env.issuedAt) throw new EnvelopeInvalidError('expiresAt is not after issuedAt')
  if (env.expiresAt - env.issuedAt > maxTtl) throw new EnvelopeInvalidError(`a ${env.type} envelope may be valid for at most ${maxTtl} ms`)
  if (env.issuedAt > now + skew) throw new NotYetValidError(env.issuedAt, now)
  if (env.expiresAt <= now - skew) throw new ExpiredError(env.expiresAt, now)

  let payload = env.payload as P
  if (options.payload !== undefined) {
    const p = options.payload.safeParse(env.payload)
    if (!p.success) throw new EnvelopeInvalidError(`${env.type} payload: ${p.error.issues.map(i => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`)
    payload = p.data
  }

  if (options.replayCache !== undefined) {
    const verdict = options.replayCache.remember({ signer: env.signer, nonce: env.nonce, issuedAt: env.issuedAt, keepUntil: env.expiresAt + skew }, now)
    if (verdict === 'replay') throw new ReplayError(`${env.type} envelope from ${env.signer} with nonce ${env.nonce} was seen before`)
    if (verdict === 'too-old') throw new ReplayError(`${env.type} envelope from ${env.signer} is older than what the replay cache can still vouch for`)
  }
  return { ...env, payload }
}
