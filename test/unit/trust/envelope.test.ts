import { generateKeyPair } from '@libp2p/crypto/keys'
import { beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { canonicalJson, encodeEnvelope, signingBytes } from '../../../protocols/envelope.ts'
import type { Envelope } from '../../../protocols/envelope.ts'
import { createMemoryReplayCache, signEnvelope, verifyEnvelope } from '../../../src/trust/index.ts'
import type { Ed25519PrivateKey } from '../../../src/trust/index.ts'

const T0 = 1_750_000_000_000
let key: Ed25519PrivateKey
let other: Ed25519PrivateKey

beforeAll(async () => {
  key = await generateKeyPair('Ed25519')
  other = await generateKeyPair('Ed25519')
})

async function resign (env: Envelope, k: Ed25519PrivateKey, changes: Record<string, unknown>): Promise<Envelope> {
  const { signature: _s, ...rest } = { ...env, ...changes }
  const sig = await k.sign(signingBytes(rest))
  return { ...rest, signature: Buffer.from(sig).toString('base64url') }
}

describe('signEnvelope / verifyEnvelope', () => {
  it('round-trips through the wire bytes with the signer taken from the key', async () => {
    const env = await signEnvelope(key, 'job', { recipe: 'FROM scratch', n: 3 }, { now: T0, ttlMs: 60_000 })
    expect(env.signer).toBe((await import('@libp2p/peer-id')).peerIdFromPrivateKey(key).toString())
    expect(env.expiresAt - env.issuedAt).toBe(60_000)
    expect(env.nonce).toMatch(/^[A-Za-z0-9_-]{22}$/)
    const back = await verifyEnvelope(encodeEnvelope(env), { type: 'job', now: T0 + 1000 })
    expect(back.payload).toEqual({ recipe: 'FROM scratch', n: 3 })
    expect(await verifyEnvelope(canonicalJson(env), { type: 'job', now: T0 })).toEqual(env)
  })

  it('parses the payload with the given schema', async () => {
    const env = await signEnvelope(key, 'offer', { queue: 2 }, { now: T0 })
    const schema = z.strictObject({ queue: z.number().int() })
    await expect(verifyEnvelope(env, { type: 'offer', now: T0, payload: schema })).resolves.toMatchObject({ payload: { queue: 2 } })
    await expect(verifyEnvelope(env, { type: 'offer', now: T0, payload: z.strictObject({ queue: z.string() }) })).rejects.toMatchObject({ name: 'EnvelopeInvalidError' })
  })

  it('refuses a tampered payload, a foreign signer and a signature made for another type', async () => {
    const env = await signEnvelope(key, 'job', { x: 1 }, { now: T0 })
    await expect(verifyEnvelope({ ...env, payload: { x: 2 } }, { type: 'job', now: T0 })).rejects.toMatchObject({ name: 'BadSignatureError' })
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    await expect(verifyEnvelope({ ...env, signer: peerIdFromPrivateKey(other).toString() }, { type: 'job', now: T0 })).rejects.toMatchObject({ name: 'BadSignatureError' })
    // Same bytes, type field changed: the domain differs so the signature cannot carry over.
    await expect(verifyEnvelope({ ...env, type: 'offer' }, { type: 'offer', now: T0 })).rejects.toMatchObject({ name: 'BadSignatureError' })
  })

  it('refuses the wrong type before checking anything else', async () => {
    const env = await signEnvelope(key, 'offer', {}, { now: T0 })
    await expect(verifyEnvelope(env, { type: 'job', now: T0 })).rejects.toMatchObject({ name: 'WrongTypeError', expected: 'job', actual: 'offer' })
  })

  it('refuses an unknown major version but accepts a newer minor', async () => {
    const env = await signEnvelope(key, 'job', {}, { now: T0 })
    const v2 = await resign(env, key, { version: '2.0' })
    await expect(verifyEnvelope(v2, { type: 'job', now: T0 })).rejects.toMatchObject({ name: 'UnknownVersionError', version: '2.0' })
    const v1x = await resign(env, key, { version: '1.7' })
    await expect(verifyEnvelope(v1x, { type: 'job', now: T0 })).resolves.toMatchObject({ version: '1.7' })
  })

  it('checks time with the clock skew allowance', async () => {
    const env = await signEnvelope(key, 'job', {}, { now: T0, ttlMs: 10_000 })
    await expect(verifyEnvelope(env, { type: 'job', now: T0 - 61_000 })).rejects.toMatchObject({ name: 'NotYetValidError' })
    await expect(verifyEnvelope(env, { type: 'job', now: T0 - 59_000 })).resolves.toBeDefined()
    await expect(verifyEnvelope(env, { type: 'job', now: T0 + 10_000 + 59_000 })).resolves.toBeDefined()
    await expect(verifyEnvelope(env, { type: 'job', now: T0 + 10_000 + 60_000 })).rejects.toMatchObject({ name: 'ExpiredError' })
    await expect(verifyEnvelope(env, { type: 'job', now: T0 + 10_001, clockSkewMs: 0 })).rejects.toMatchObject({ name: 'ExpiredError' })
  })

  it('refuses validity spans that are empty or longer than the type allows', async () => {
    await expect(signEnvelope(key, 'offer', {}, { ttlMs: 2 * 3600_000 })).rejects.toMatchObject({ name: 'EnvelopeInvalidError' })
    const env = await signEnvelope(key, 'offer', {}, { now: T0 })
    const long = await resign(env, key, { expiresAt: T0 + 2 * 3600_000 })
    await expect(verifyEnvelope(long, { type: 'offer', now: T0 })).rejects.toMatchObject({ name: 'EnvelopeInvalidError' })
    const empty = await resign(env, key, { expiresAt: T0 })
    await expect(verifyEnvelope(empty, { type: 'offer', now: T0 })).rejects.toMatchObject({ name: 'EnvelopeInvalidError' })
  })

  it('refuses non-canonical bytes, extra fields and floats even when signed', async () => {
    const env = await signEnvelope(key, 'job', { a: 1 }, { now: T0 })
    const spaced = JSON.stringify(env, null, 1)
    await expect(verifyEnvelope(new TextEncoder().encode(spaced), { type: 'job', now: T0 })).rejects.toMatchObject({ name: 'EnvelopeInvalidError' })
    const dup = canonicalJson(env).replace('{"expiresAt"', `{"expiresAt":${env.expiresAt + 1},"expiresAt"`)
    await expect(verifyEnvelope(dup, { type: 'job', now: T0 })).rejects.toMatchObject({ name: 'EnvelopeInvalidError' })
    await expect(verifyEnvelope({ ...env, extra: 1 }, { type: 'job', now: T0 })).rejects.toMatchObject({ name: 'EnvelopeInvalidError' })
    await expect(signEnvelope(key, 'job', { a: 0.5 })).rejects.toMatchObject({ name: 'EnvelopeInvalidError' })
    await expect(verifyEnvelope({ ...env, payload: { a: 0.5 } }, { type: 'job', now: T0 })).rejects.toMatchObject({ name: 'EnvelopeInvalidError' })
  })

  it('refuses envelopes over the size limit', async () => {
    await expect(signEnvelope(key, 'job', { big: 'x'.repeat(1024 * 1024) })).rejects.toMatchObject({ name: 'EnvelopeInvalidError' })
    await expect(verifyEnvelope(new Uint8Array(1024 * 1024 + 1), { type: 'job' })).rejects.toMatchObject({ name: 'EnvelopeInvalidError' })
  })

  it('refuses a replayed nonce only after everything else passed', async () => {
    const cache = createMemoryReplayCache()
    const env = await signEnvelope(key, 'award', { job: 'j' }, { now: T0 })
    await expect(verifyEnvelope({ ...env, payload: { job: 'k' } }, { type: 'award', now: T0, replayCache: cache })).rejects.toMatchObject({ name: 'BadSignatureError' })
    expect(cache.size()).toBe(0)
    await verifyEnvelope(env, { type: 'award', now: T0, replayCache: cache })
    await expect(verifyEnvelope(env, { type: 'award', now: T0 + 1, replayCache: cache })).rejects.toMatchObject({ name: 'ReplayError' })
    // The same payload signed again has a fresh nonce and passes.
    const again = await signEnvelope(key, 'award', { job: 'j' }, { now: T0 })
    await expect(verifyEnvelope(again, { type: 'award', now: T0, replayCache: cache })).resolves.toBeDefined()
  })
})
