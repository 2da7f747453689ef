/**
 * Job secrets (protocols/job.md §6): the values `kiln submit --secret`
 * gives, sealed by the requester to the one agent it awards a platform,
 * and opened by that agent in memory only.
 *
 * Scheme `x25519-hkdf-sha256-aes-256-gcm` (version 1):
 * - the agent's X25519 key is its Ed25519 libp2p key in Montgomery form
 *   (RFC 7748 §4.1 map for the public key; for the private key, the
 *   first half of SHA-512 of the Ed25519 seed, the scalar Ed25519 itself
 *   signs with), so a peer id is all a requester needs;
 * - the requester makes a fresh X25519 key pair per award, takes the
 *   shared secret with the agent's key, and derives the AES key with
 *   HKDF-SHA256 (salt: the ephemeral public key then the agent's,
 *   info: `kiln/job-secrets/v1`);
 * - AES-256-GCM with a random 96-bit nonce seals the canonical JSON of
 *   `{"<id>": "<base64url value>", ...}`; the associated data is the
 *   canonical JSON of `{v, jobId, platform, builder, requester}`, so a
 *   sealed box opens only for that job platform, awarded to that agent by
 *   that requester.
 *
 * Terms:
 * - sealed secrets: the `secrets` field of an award (SealedSecrets).
 */
import { createCipheriv, createDecipheriv, createHash, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import type { PrivateKey } from '@libp2p/interface'
import { canonicalBytes, parseCanonical } from '../../protocols/envelope.ts'
import { MAX_SECRETS, MAX_SECRETS_BYTES, SECRETS_ALG, SecretId } from '../../protocols/job.ts'
import type { SealedSecrets } from '../../protocols/job.ts'
import { publicKeyFromPeerId } from '../trust/index.ts'

/** Thrown when sealed secrets cannot be opened: another agent's, tampered with, or for another job or platform. */
export class SecretsError extends Error {
  static override readonly name = 'SecretsError'
  override readonly name = SecretsError.name
  readonly code = 'ERR_JOB_SECRETS'
}

/** Whom the sealed secrets are for: bound into the ciphertext as associated data. */
export interface SecretsBinding {
  jobId: string
  platform: string
  /** Peer id of the awarded agent. */
  builder: string
  /** Peer id of the requester that signs the award. */
  requester: string
}

const INFO = 'kiln/job-secrets/v1'
const P = (1n << 255n) - 19n
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex')
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex')

function modPow (base: bigint, exp: bigint): bigint {
  let result = 1n
  let b = base % P
  let e = exp
  while (e > 0n) {
    if ((e & 1n) === 1n) result = (result * b) % P
    b = (b * b) % P
    e >>= 1n
  }
  return result
}

const fromLE = (bytes: Uint8Array): bigint => {
  let n = 0n
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i] as number)
  return n
}
const toLE = (n: bigint): Buffer => {
  const out = Buffer.alloc(32)
  let v = n
  for (let i = 0; i < 32; i++) { out[i] = Number(v & 0xffn); v >>= 8n }
  return out
}

/** The X25519 public key (32 bytes) of an Ed25519 public key: u = (1 + y) / (1 - y) mod p. */
export function montgomeryPublic (edPublic: Uint8Array): Uint8Array {
  if (edPublic.byteLength !== 32) throw new SecretsError(`an Ed25519 public key has 32 bytes, not ${edPublic.byteLength}`)
  const y = fromLE(edPublic) & ((1n << 255n) - 1n)
  const denominator = (1n - y + P) % P
  if (denominator === 0n || y >= P) throw new SecretsError('the Ed25519 public key has no X25519 form')
  return toLE(((1n + y) * modPow(denominator, P - 2n)) % P)
}

/** The X25519 private key of an Ed25519 private key (its 32-byte seed first in `raw`). */
function montgomeryPrivate (key: PrivateKey): KeyObject {
  if (key.type !== 'Ed25519') throw new SecretsError(`job secrets need an Ed25519 key, and this node's is ${key.type}`)
  const scalar = createHash('sha512').update(key.raw.subarray(0, 32)).digest().subarray(0, 32)
  return createPrivateKey({ key: Buffer.concat([X25519_PKCS8, scalar]), format: 'der', type: 'pkcs8' })
}

/** The X25519 public key of an Ed25519 private key, as montgomeryPublic gives it from the peer id. */
export function montgomeryPublicOf (key: PrivateKey): Uint8Array {
  const der = createPublicKey(montgomeryPrivate(key)).export({ format: 'der', type: 'spki' })
  return new Uint8Array(der.subarray(der.byteLength - 32))
}

const x25519Public = (raw: Uint8Array): KeyObject => createPublicKey({ key: Buffer.concat([X25519_SPKI, raw]), format: 'der', type: 'spki' })
const rawPublic = (key: KeyObject): Buffer => {
  const der = key.export({ format: 'der', type: 'spki' })
  return der.subarray(der.byteLength - 32)
}

function deriveKey (shared: Buffer, epk: Uint8Array, recipient: Uint8Array): Buffer {
  // An all-zero shared secret means a small-order point: nothing is secret then.
  if (shared.every(b => b === 0)) throw new SecretsError('the key exchange gave an all-zero secret (a small-order public key)')
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([epk, recipient]), INFO, 32))
}

const aad = (b: SecretsBinding): Uint8Array => canonicalBytes({ v: 1, jobId: b.jobId, platform: b.platform, builder: b.builder, requester: b.requester })

/** Checks ids and sizes against protocols/job.md §6 limits; throws SecretsError naming what is over. */
export function checkSecrets (secrets: Readonly<Record<string, Uint8Array>>): void {
  const ids = Object.keys(secrets)
  if (ids.length > MAX_SECRETS) throw new SecretsError(`${ids.length} secrets: a job carries at most ${MAX_SECRETS}`)
  let total = 0
  for (const id of ids) {
    if (!SecretId.safeParse(id).success) throw new SecretsError(`secret id ${JSON.stringify(id)}: expected 1-128 characters, no control characters`)
    total += (secrets[id] as Uint8Array).byteLength
  }
  if (total > MAX_SECRETS_BYTES) throw new SecretsError(`the secrets come to ${total} bytes: a job carries at most ${MAX_SECRETS_BYTES}`)
}

/** Seals `secrets` to the agent `binding.builder` names (its peer id embeds its Ed25519 key). */
export function sealSecrets (secrets: Readonly<Record<string, Uint8Array>>, binding: SecretsBinding): SealedSecrets {
  checkSecrets(secrets)
  let recipient: Uint8Array
  try {
    recipient = montgomeryPublic(publicKeyFromPeerId(binding.builder).raw)
  } catch (err) {
    throw new SecretsError(`cannot seal secrets to ${binding.builder}: ${(err as Error).message}`)
  }
  const eph = generateKeyPairSync('x25519')
  const epk = rawPublic(eph.publicKey)
  const key = deriveKey(diffieHellman({ privateKey: eph.privateKey, publicKey: x25519Public(recipient) }), epk, recipient)
  const iv = randomBytes(12)
  const plain = Buffer.from(canonicalBytes(Object.fromEntries(Object.entries(secrets).map(([id, v]) => [id, Buffer.from(v).toString('base64url')]))))
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(aad(binding))
  const ct = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()])
  plain.fill(0)
  key.fill(0)
  return { alg: SECRETS_ALG, epk: epk.toString('base64url'), iv: iv.toString('base64url'), ct: ct.toString('base64url') }
}

/**
 * Opens sealed secrets with this agent's key, in memory. Throws
 * SecretsError when they were sealed to another key, for another job,
 * platform or requester, or were altered on the way.
 */
export function openSecrets (key: PrivateKey, sealed: SealedSecrets, binding: SecretsBinding): Record<string, Uint8Array> {
  const own = montgomeryPrivate(key)
  const epk = Buffer.from(sealed.epk, 'base64url')
  const iv = Buffer.from(sealed.iv, 'base64url')
  const ct = Buffer.from(sealed.ct, 'base64url')
  if (epk.byteLength !== 32 || iv.byteLength !== 12 || ct.byteLength < 16) throw new SecretsError('sealed secrets are malformed (key, nonce or ciphertext of the wrong size)')
  const recipient = rawPublic(createPublicKey(own))
  let shared: Buffer
  try {
    shared = diffieHellman({ privateKey: own, publicKey: x25519Public(epk) })
  } catch (err) {
    // OpenSSL refuses a small-order point itself.
    throw new SecretsError(`the sealed secrets' ephemeral key is unusable: ${(err as Error).message}`)
  }
  const k = deriveKey(shared, epk, recipient)
  let plain: Buffer
  try {
    const decipher = createDecipheriv('aes-256-gcm', k, iv)
    decipher.setAAD(aad(binding))
    decipher.setAuthTag(ct.subarray(ct.byteLength - 16))
    plain = Buffer.concat([decipher.update(ct.subarray(0, ct.byteLength - 16)), decipher.final()])
  } catch {
    throw new SecretsError('the secrets do not open with this agent\'s key: sealed to another agent, for another job or platform, or altered')
  } finally {
    k.fill(0)
  }
  try {
    const parsed = parseCanonical(plain, MAX_SECRETS_BYTES * 2)
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object')
    const out: Record<string, Uint8Array> = {}
    for (const [id, v] of Object.entries(parsed)) {
      if (typeof v !== 'string' || !SecretId.safeParse(id).success) throw new Error(`bad entry ${JSON.stringify(id)}`)
      out[id] = new Uint8Array(Buffer.from(v, 'base64url'))
    }
    checkSecrets(out)
    return out
  } catch (err) {
    throw new SecretsError(`the opened secrets are malformed: ${(err as Error).message}`)
  } finally {
    plain.fill(0)
  }
}
