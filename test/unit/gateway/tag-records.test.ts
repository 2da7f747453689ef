/**
 * Tag records (protocols/tag.md) without a network: signing and checking,
 * the DHT validator (key must match signer and name), the selector (highest
 * seq of valid values), and the roles a resolver requires.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { describe, expect, it } from 'vitest'
import { canonicalBytes, parseCanonical } from '../../../protocols/envelope.ts'
import { tagDhtKey } from '../../../protocols/tag.ts'
import { selectTagRecord, signTagRecord, validateTagRecord, verifyTagRecord } from '../../../src/p2p/tag-records.ts'
import { blob } from './helpers.ts'

const target = { repository: 'hpc/app', tag: 'v1', digest: blob('m').digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 123 }

describe('tag records', () => {
  it('verifies a signed record under its own key only', async () => {
    const key = await generateKeyPair('Ed25519')
    const { record, value } = await signTagRecord(key, target, { seq: 7 })
    expect(record.payload).toEqual({ ...target, seq: 7 })
    await validateTagRecord(tagDhtKey('hpc/app', 'v1', record.signer), value)
    const other = await generateKeyPair('Ed25519')
    const { record: otherRecord } = await signTagRecord(other, target)
    await expect(validateTagRecord(tagDhtKey('hpc/app', 'v1', otherRecord.signer), value)).rejects.toThrow(/stored under/)
    await expect(validateTagRecord(tagDhtKey('hpc/app', 'v2', record.signer), value)).rejects.toThrow(/another name/)
    await expect(validateTagRecord(new TextEncoder().encode('/kiln-tag/x'), value)).rejects.toThrow(/not a/)
  })

  it('refuses a tampered, expired or malformed record', async () => {
    const key = await generateKeyPair('Ed25519')
    const { value } = await signTagRecord(key, target, { ttlMs: 60_000, now: Date.now() - 10 * 60_000 })
    await expect(verifyTagRecord(value)).rejects.toThrow(/expired/i)
    const fresh = (await signTagRecord(key, target)).value
    const parsed = parseCanonical(fresh) as { envelope: { payload: { digest: string } } }
    parsed.envelope.payload.digest = blob('evil').digest
    await expect(verifyTagRecord(canonicalBytes(parsed))).rejects.toThrow(/signature/)
    await expect(verifyTagRecord(new TextEncoder().encode('{"envelope":1}'))).rejects.toThrow(/invalid tag record/)
    await expect(signTagRecord(key, { ...target, repository: '../etc' })).rejects.toThrow()
  })

  it('selects the highest valid seq and never an invalid value', async () => {
    const key = await generateKeyPair('Ed25519')
    const old = await signTagRecord(key, target, { seq: 1 })
    const newer = await signTagRecord(key, { ...target, digest: blob('n').digest }, { seq: 2 })
    const dhtKey = tagDhtKey('hpc/app', 'v1', old.record.signer)
    const bogus = new TextEncoder().encode('{"certificates":[],"envelope":{}}')
    expect(await selectTagRecord(dhtKey, [old.value, newer.value])).toBe(1)
    expect(await selectTagRecord(dhtKey, [newer.value, old.value])).toBe(0)
    expect(await selectTagRecord(dhtKey, [bogus, old.value])).toBe(1)
  })
})
