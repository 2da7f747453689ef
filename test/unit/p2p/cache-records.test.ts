/**
 * Cache records (protocols/cache.md §1–§3) without a network: what the DHT
 * validator accepts and refuses, and what the selector picks.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { beforeAll, describe, expect, it } from 'vitest'
import { cacheDhtKey, encodeCacheRecordValue } from '../../../protocols/cache.ts'
import { peerIdOf, signEnvelope } from '../../../src/trust/index.ts'
import { selectCacheRecord, signCacheRecord, validateCacheRecord, verifyCacheRecord } from '../../../src/p2p/cache-records.ts'

const sha = (c: string): string => `sha256:${c.repeat(64)}`
const entry = { key: sha('a'), layer: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha('b'), size: 10 }, diffId: sha('c') }

describe('cache records', () => {
  let k1: PrivateKey
  let k2: PrivateKey
  beforeAll(async () => { k1 = await generateKeyPair('Ed25519'); k2 = await generateKeyPair('Ed25519') })

  it('validates a record under its signer\'s key for its step, and refuses it under any other', async () => {
    const { value, record } = await signCacheRecord(k1, entry)
    expect(record.signer).toBe(peerIdOf(k1))
    await expect(validateCacheRecord(cacheDhtKey(entry.key, peerIdOf(k1)), value)).resolves.toBeUndefined()
    await expect(validateCacheRecord(cacheDhtKey(entry.key, peerIdOf(k2)), value)).rejects.toThrow(/stored under/)
    await expect(validateCacheRecord(cacheDhtKey(sha('d'), peerIdOf(k1)), value)).rejects.toThrow(/another step/)
    await expect(validateCacheRecord(new TextEncoder().encode('/kiln-tag/x/y'), value)).rejects.toMatchObject({ name: 'InvalidCacheRecordError' })
  })

  it('refuses an envelope of another type, a bad payload and an expired record', async () => {
    const key = cacheDhtKey(entry.key, peerIdOf(k1))
    const tag = await signEnvelope(k1, 'tag', { repository: 'a', tag: 'b', digest: sha('b'), mediaType: 'x', size: 1, seq: 1 })
    await expect(validateCacheRecord(key, encodeCacheRecordValue({ envelope: tag, certificates: [] }))).rejects.toMatchObject({ name: 'InvalidCacheRecordError' })
    const bad = await signEnvelope(k1, 'cache', { ...entry, seq: 1, layer: { ...entry.layer, digest: 'md5:x' } })
    await expect(validateCacheRecord(key, encodeCacheRecordValue({ envelope: bad, certificates: [] }))).rejects.toThrow(/invalid cache record/)
    const { value } = await signCacheRecord(k1, entry, { now: Date.now() - 3_600_000, ttlMs: 1000 })
    await expect(verifyCacheRecord(value, { key })).rejects.toThrow(/invalid cache record/)
  })

  it('selects the highest seq, never an invalid value', async () => {
    const key = cacheDhtKey(entry.key, peerIdOf(k1))
    const older = (await signCacheRecord(k1, entry, { seq: 1 })).value
    const newer = (await signCacheRecord(k1, entry, { seq: 2 })).value
    const forged = (await signCacheRecord(k2, entry, { seq: 9 })).value
    expect(await selectCacheRecord(key, [older, forged, newer])).toBe(2)
  })
})
