import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { beforeAll, describe, expect, it } from 'vitest'
import { MAX_SECRETS, MAX_SECRETS_BYTES, SealedSecrets } from '../../../protocols/job.ts'
import { SecretsError, montgomeryPublic, montgomeryPublicOf, openSecrets, sealSecrets } from '../../../src/jobs/index.ts'
import type { SecretsBinding } from '../../../src/jobs/index.ts'
import type { Ed25519PrivateKey } from '../../../src/trust/index.ts'

const id = (k: Ed25519PrivateKey): string => peerIdFromPrivateKey(k).toString()
const enc = new TextEncoder()

let agent: Ed25519PrivateKey
let other: Ed25519PrivateKey
let requester: Ed25519PrivateKey
let binding: SecretsBinding
const secrets = { token: enc.encode('s3cr3t-token-value\n'), 'npm.rc': enc.encode('//registry/:_authToken=abc') }

beforeAll(async () => {
  agent = await generateKeyPair('Ed25519')
  other = await generateKeyPair('Ed25519')
  requester = await generateKeyPair('Ed25519')
  binding = { jobId: 'job-0123456789', platform: 'linux/amd64', builder: id(agent), requester: id(requester) }
})

const flip = (b64: string, at: number): string => {
  const bytes = Buffer.from(b64, 'base64url')
  const i = at % bytes.byteLength
  bytes[i] = (bytes[i] as number) ^ 0x01
  return bytes.toString('base64url')
}

describe('job secrets (protocols/job.md §6)', () => {
  it('maps an Ed25519 key to the X25519 key its peer id gives, so that both ends agree', async () => {
    for (let i = 0; i < 5; i++) {
      const k = await generateKeyPair('Ed25519')
      expect(Buffer.from(montgomeryPublic(k.publicKey.raw)).toString('hex')).toBe(Buffer.from(montgomeryPublicOf(k)).toString('hex'))
    }
  })

  it('gives the RFC 7748 X25519 answer: a DH with the converted key equals one computed from the other side', async () => {
    const eph = generateKeyPairSync('x25519')
    const spki = Buffer.concat([Buffer.from('302a300506032b656e032100', 'hex'), Buffer.from(montgomeryPublic(agent.publicKey.raw))])
    const a = diffieHellman({ privateKey: eph.privateKey, publicKey: createPublicKey({ key: spki, format: 'der', type: 'spki' }) })
    // The agent's side as Ed25519 defines its scalar: SHA-512 of the seed, first half (clamped by X25519 itself).
    const { createHash } = await import('node:crypto')
    const scalar = createHash('sha512').update(agent.raw.subarray(0, 32)).digest().subarray(0, 32)
    const own = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), scalar]), format: 'der', type: 'pkcs8' })
    const b = diffieHellman({ privateKey: own, publicKey: eph.publicKey })
    expect(a.toString('hex')).toBe(b.toString('hex'))
  })

  it('round-trips the values to the awarded agent, and the wire form carries none of them', () => {
    const sealed = sealSecrets(secrets, binding)
    expect(SealedSecrets.safeParse(sealed).success).toBe(true)
    const wire = JSON.stringify(sealed)
    expect(wire).not.toContain('s3cr3t')
    expect(wire).not.toContain(Buffer.from(secrets.token).toString('base64url').slice(0, 12))
    const opened = openSecrets(agent, sealed, binding)
    expect(Object.keys(opened).sort()).toEqual(['npm.rc', 'token'])
    expect(Buffer.from(opened.token as Uint8Array).toString()).toBe('s3cr3t-token-value\n')
    expect(Buffer.from(opened['npm.rc'] as Uint8Array).toString()).toBe('//registry/:_authToken=abc')
  })

  it('seals afresh each time: a new ephemeral key and nonce', () => {
    const a = sealSecrets(secrets, binding)
    const b = sealSecrets(secrets, binding)
    expect(a.epk).not.toBe(b.epk)
    expect(a.iv).not.toBe(b.iv)
    expect(a.ct).not.toBe(b.ct)
  })

  it('does not open for another agent', () => {
    const sealed = sealSecrets(secrets, binding)
    expect(() => openSecrets(other, sealed, { ...binding, builder: id(other) })).toThrow(SecretsError)
    expect(() => openSecrets(other, sealed, binding)).toThrow(/do not open with this agent's key/)
  })

  it('does not open for another job, platform, builder or requester (associated data)', () => {
    const sealed = sealSecrets(secrets, binding)
    for (const changed of [{ jobId: 'job-9999999999' }, { platform: 'linux/arm64' }, { builder: id(other) }, { requester: id(other) }]) {
      expect(() => openSecrets(agent, sealed, { ...binding, ...changed })).toThrow(SecretsError)
    }
  })

  it('fails on any tampering: ciphertext, tag, nonce or ephemeral key', () => {
    const sealed = sealSecrets(secrets, binding)
    const ctBytes = Buffer.from(sealed.ct, 'base64url').byteLength
    for (const bad of [
      { ...sealed, ct: flip(sealed.ct, 0) },
      { ...sealed, ct: flip(sealed.ct, ctBytes - 1) },
      { ...sealed, ct: Buffer.from(sealed.ct, 'base64url').subarray(0, ctBytes - 1).toString('base64url') },
      { ...sealed, iv: flip(sealed.iv, 3) },
      { ...sealed, epk: flip(sealed.epk, 5) }
    ]) {
      expect(() => openSecrets(agent, bad, binding)).toThrow(SecretsError)
    }
  })

  it('refuses a small-order ephemeral key instead of deriving a key everyone knows', () => {
    const sealed = sealSecrets(secrets, binding)
    expect(() => openSecrets(agent, { ...sealed, epk: Buffer.alloc(32).toString('base64url') }, binding)).toThrow(/all-zero|unusable/)
  })

  it('refuses too many secrets or too many bytes before sealing anything', () => {
    const many = Object.fromEntries(Array.from({ length: MAX_SECRETS + 1 }, (_, i) => [`s${i}`, enc.encode('x')]))
    expect(() => sealSecrets(many, binding)).toThrow(/at most 32/)
    expect(() => sealSecrets({ big: new Uint8Array(MAX_SECRETS_BYTES + 1) }, binding)).toThrow(/at most/)
    expect(() => sealSecrets({ 'a\nb': enc.encode('x') }, binding)).toThrow(/secret id/)
  })

  it('seals the largest allowed secrets within the wire schema', () => {
    const sealed = sealSecrets({ big: new Uint8Array(MAX_SECRETS_BYTES).fill(7) }, binding)
    expect(SealedSecrets.safeParse(sealed).success).toBe(true)
    expect(openSecrets(agent, sealed, binding).big?.byteLength).toBe(MAX_SECRETS_BYTES)
  })
})
