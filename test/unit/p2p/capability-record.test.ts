import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import {
  agentCid, capabilityCid, capabilityDhtKey, capabilitySigningBytes, decodeSignedCapability, discoveryCids,
  encodeSignedCapability, matchesCapabilityQuery, platformCid
} from '../../../protocols/capability.ts'
import type { CapabilityRecord } from '../../../protocols/capability.ts'
import { CAPABILITY_MAX_BYTES, CAPABILITY_MAX_CLOCK_SKEW_MS, CAPABILITY_MAX_TTL_MS } from '../../../protocols/constants.ts'
import {
  selectCapabilityRecord, signCapabilityRecord, validateCapabilityRecord, verifyCapabilityRecord
} from '../../../src/p2p/capability-record.ts'

const NOW = 1_750_000_000_000
const MINUTE = 60_000

function recordFor (key: PrivateKey, over: Partial<CapabilityRecord> = {}): CapabilityRecord {
  return {
    v: 1,
    peerId: peerIdFromPrivateKey(key).toString(),
    seq: 1,
    issuedAt: NOW,
    expiresAt: NOW + 30 * MINUTE,
    platforms: [{ platform: 'linux/amd64', features: ['avx2'] }],
    emulated: ['linux/arm64'],
    capabilities: ['gpu', 'mpi'],
    details: { mpi: 'openmpi' },
    limits: { cpus: 8, memoryBytes: 1 << 30, diskBytes: 1 << 30 },
    queue: { queued: 0, running: 1 },
    addresses: ['/ip4/127.0.0.1/tcp/4001'],
    ...over
  }
}

const at = { now: NOW + MINUTE }
const rejects = async (p: Promise<unknown>): Promise<void> => { await expect(p).rejects.toMatchObject({ name: 'InvalidCapabilityRecordError' }) }

describe('capability records', async () => {
  const key = await generateKeyPair('Ed25519')
  const other = await generateKeyPair('Ed25519')
  const me = peerIdFromPrivateKey(key).toString()

  it('round-trips: what is signed verifies, for its own peer id', async () => {
    const record = recordFor(key)
    const bytes = await signCapabilityRecord(record, key)
    expect(await verifyCapabilityRecord(bytes, { ...at, peerId: me })).toEqual(record)
    // the DHT validator checks against the clock
    const fresh = await signCapabilityRecord(recordFor(key, { issuedAt: Date.now(), expiresAt: Date.now() + MINUTE }), key)
    await expect(validateCapabilityRecord(capabilityDhtKey(me), fresh)).resolves.toBeUndefined()
    await rejects(validateCapabilityRecord(capabilityDhtKey(me), bytes))
  })

  it('refuses to sign a record that names another peer', async () => {
    await rejects(signCapabilityRecord(recordFor(other), key))
  })

  it('refuses a forged signature: another key over the same bytes, or a record changed after signing', async () => {
    const record = recordFor(key)
    const forgedSig = Buffer.from(await other.sign(capabilitySigningBytes(record))).toString('base64url')
    await rejects(verifyCapabilityRecord(encodeSignedCapability({ record, signature: forgedSig }), at))
    const genuine = decodeSignedCapability(await signCapabilityRecord(record, key))
    const tampered = encodeSignedCapability({ record: { ...record, capabilities: ['gpu', 'mpi', 'cuda'] }, signature: genuine.signature })
    await rejects(verifyCapabilityRecord(tampered, at))
    // the signature covers the domain string: the same canonical body signed without it does not verify
    const bare = Buffer.from(await key.sign(capabilitySigningBytes(record).subarray('kiln/capability/v1'.length + 1))).toString('base64url')
    await rejects(verifyCapabilityRecord(encodeSignedCapability({ record, signature: bare }), at))
  })

  it('refuses a valid record stored under another peer id', async () => {
    const bytes = await signCapabilityRecord(recordFor(key), key)
    const elsewhere = peerIdFromPrivateKey(other).toString()
    await rejects(verifyCapabilityRecord(bytes, { ...at, peerId: elsewhere }))
    // fresh, so that only the key can be what the validator refuses
    const fresh = await signCapabilityRecord(recordFor(key, { issuedAt: Date.now(), expiresAt: Date.now() + MINUTE }), key)
    await expect(validateCapabilityRecord(capabilityDhtKey(me), fresh)).resolves.toBeUndefined()
    await rejects(validateCapabilityRecord(capabilityDhtKey(elsewhere), fresh))
    await rejects(validateCapabilityRecord(new TextEncoder().encode(`/pk/${me}`), fresh))
  })

  it('refuses an expired record, one issued too far in the future, and one valid for too long', async () => {
    const bytes = await signCapabilityRecord(recordFor(key), key)
    await rejects(verifyCapabilityRecord(bytes, { now: NOW + 30 * MINUTE }))
    expect((await verifyCapabilityRecord(bytes, { now: NOW + 30 * MINUTE - 1 })).seq).toBe(1)
    const future = await signCapabilityRecord(recordFor(key, { issuedAt: NOW + CAPABILITY_MAX_CLOCK_SKEW_MS + 1, expiresAt: NOW + 60 * MINUTE }), key)
    await rejects(verifyCapabilityRecord(future, { now: NOW }))
    const long = await signCapabilityRecord(recordFor(key, { expiresAt: NOW + CAPABILITY_MAX_TTL_MS + 1 }), key)
    await rejects(verifyCapabilityRecord(long, at))
  })

  it('refuses oversize, non-canonical and unknown-field values', async () => {
    const huge = recordFor(key, { addresses: Array.from({ length: 64 }, (_, i) => `/dns4/${String(i).padStart(2, '0')}${'a'.repeat(220)}.example.org/tcp/4001`) })
    await expect(signCapabilityRecord(huge, key)).rejects.toThrow(RangeError)
    const oversize = new TextEncoder().encode(' '.repeat(CAPABILITY_MAX_BYTES + 1))
    await rejects(verifyCapabilityRecord(oversize, at))
    const bytes = await signCapabilityRecord(recordFor(key), key)
    const spaced = new TextEncoder().encode(JSON.stringify(JSON.parse(new TextDecoder().decode(bytes)), null, 1))
    await rejects(verifyCapabilityRecord(spaced, at))
    const extra = { ...recordFor(key), evil: true } as CapabilityRecord
    const extraSig = Buffer.from(await key.sign(capabilitySigningBytes(extra))).toString('base64url')
    await rejects(verifyCapabilityRecord(new TextEncoder().encode(JSON.stringify({ record: extra, signature: extraSig })), at))
  })

  it('selector picks the valid record with the highest seq, then the latest issuedAt; invalid ones never win', async () => {
    const dhtKey = capabilityDhtKey(me)
    const now = Date.now()
    const mk = async (seq: number, issuedAt: number, signer = key): Promise<Uint8Array> => {
      const record = recordFor(key, { seq, issuedAt, expiresAt: issuedAt + 30 * MINUTE })
      if (signer === key) return await signCapabilityRecord(record, key)
      return encodeSignedCapability({ record, signature: Buffer.from(await signer.sign(capabilitySigningBytes(record))).toString('base64url') })
    }
    const seq5 = await mk(5, now - 2 * MINUTE)
    const seq7 = await mk(7, now - 3 * MINUTE)
    const seq7later = await mk(7, now - MINUTE)
    const forged99 = await mk(99, now, other)
    const expired9 = await mk(9, now - 40 * MINUTE)
    expect(await selectCapabilityRecord(dhtKey, [seq5, seq7, forged99, expired9])).toBe(1)
    expect(await selectCapabilityRecord(dhtKey, [forged99, seq5])).toBe(1)
    expect(await selectCapabilityRecord(dhtKey, [seq7, seq7later, seq5])).toBe(1)
    expect(await selectCapabilityRecord(dhtKey, [seq7later, seq7])).toBe(0)
    // a genuine record of another peer is invalid under this key
    const otherRecord = await signCapabilityRecord({ ...recordFor(other), seq: 1000, issuedAt: now, expiresAt: now + MINUTE }, other)
    expect(await selectCapabilityRecord(dhtKey, [otherRecord, seq5])).toBe(1)
  })

  it('provides a key per native and emulated platform, per capability and per native CPU feature, and matches on every criterion', () => {
    const record = recordFor(key)
    const keys = discoveryCids(record).map(c => c.toString()).sort()
    expect(keys).toEqual([agentCid(), platformCid('linux/amd64'), platformCid('linux/arm64'), capabilityCid('gpu'), capabilityCid('mpi'), capabilityCid('avx2')].map(c => c.toString()).sort())
    expect(matchesCapabilityQuery(record, { capability: 'avx2' })).toBe(true)
    expect(platformCid('linux/arm64').equals(platformCid('linux/amd64'))).toBe(false)
    expect(matchesCapabilityQuery(record, { platform: 'linux/amd64', capability: 'gpu' })).toBe(true)
    expect(matchesCapabilityQuery(record, { platform: 'linux/arm64', capability: 'mpi' })).toBe(true)
    expect(matchesCapabilityQuery(record, { platform: 'linux/arm64', nativeOnly: true })).toBe(false)
    expect(matchesCapabilityQuery(record, { platform: 'linux/amd64', capability: 'cuda' })).toBe(false)
    expect(matchesCapabilityQuery(record, { platform: 'linux/ppc64le' })).toBe(false)
    expect(matchesCapabilityQuery(record, {})).toBe(true)
  })
})
