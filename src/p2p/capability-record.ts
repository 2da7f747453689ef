/**
 * Signing and checking capability records (protocols/capability.md §3), and
 * the DHT validator and selector for the `kiln-cap` namespace.
 */
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import {
  capabilitySigningBytes, decodeSignedCapability, encodeSignedCapability, peerIdOfCapabilityKey
} from '../../protocols/capability.ts'
import type { CapabilityRecord } from '../../protocols/capability.ts'
import { CAPABILITY_MAX_CLOCK_SKEW_MS, CAPABILITY_MAX_TTL_MS } from '../../protocols/constants.ts'
import { InvalidCapabilityRecordError } from './errors.ts'

/** Signs a record with the key of the peer it names; returns the DHT value bytes. */
export async function signCapabilityRecord (record: CapabilityRecord, privateKey: PrivateKey): Promise<Uint8Array> {
  if (peerIdFromPrivateKey(privateKey).toString() !== record.peerId) {
    throw new InvalidCapabilityRecordError(`record names peer ${record.peerId}, but the key is another peer's`)
  }
  const signature = await privateKey.sign(capabilitySigningBytes(record))
  return encodeSignedCapability({ record, signature: Buffer.from(signature).toString('base64url') })
}

export interface VerifyOptions {
  /** The peer the record must belong to (the DHT key's peer). */
  peerId?: string
  /** Current time in ms; default Date.now(). */
  now?: number
}

/**
 * Parses and checks DHT value bytes: size, canonical form, schema, the
 * signature by the key of the peer the record names, and its validity
 * window. Returns the record, or throws InvalidCapabilityRecordError.
 */
export async function verifyCapabilityRecord (bytes: Uint8Array, options: VerifyOptions = {}): Promise<CapabilityRecord> {
  const now = options.now ?? Date.now()
  let signed
  try {
    signed = decodeSignedCapability(bytes)
  } catch (err) {
    throw new InvalidCapabilityRecordError(`malformed capability record: ${(err as Error).message}`, { cause: err })
  }
  const { record, signature } = signed
  if (options.peerId !== undefined && options.peerId !== record.peerId) {
    throw new InvalidCapabilityRecordError(`record names peer ${record.peerId}, stored under ${options.peerId}`)
  }
  let publicKey
  try {
    publicKey = peerIdFromString(record.peerId).publicKey
  } catch (err) {
    throw new InvalidCapabilityRecordError(`invalid peer id ${record.peerId}`, { cause: err })
  }
  if (publicKey?.type !== 'Ed25519') throw new InvalidCapabilityRecordError(`peer ${record.peerId} has no inline Ed25519 key`)
  const ok = await publicKey.verify(capabilitySigningBytes(record), Buffer.from(signature, 'base64url'))
  if (!ok) throw new InvalidCapabilityRecordError(`bad signature on the capability record of ${record.peerId}`)
  if (record.expiresAt <= now) throw new InvalidCapabilityRecordError(`capability record of ${record.peerId} expired at ${new Date(record.expiresAt).toISOString()}`)
  if (record.issuedAt > now + CAPABILITY_MAX_CLOCK_SKEW_MS) throw new InvalidCapabilityRecordError(`capability record of ${record.peerId} is issued in the future`)
  if (record.expiresAt - record.issuedAt > CAPABILITY_MAX_TTL_MS) throw new InvalidCapabilityRecordError(`capability record of ${record.peerId} is valid for longer than ${CAPABILITY_MAX_TTL_MS} ms`)
  return record
}

/** DHT validator for `/kiln-cap/<peerId>`: throws unless the value is that peer's valid record. */
export async function validateCapabilityRecord (key: Uint8Array, value: Uint8Array): Promise<void> {
  const peerId = peerIdOfCapabilityKey(key)
  if (peerId === undefined) throw new InvalidCapabilityRecordError('not a /kiln-cap/<peerId> key')
  await verifyCapabilityRecord(value, { peerId })
}

/** DHT selector: the valid record with the highest seq (then the latest issuedAt); invalid ones never win. */
export async function selectCapabilityRecord (key: Uint8Array, values: Uint8Array[]): Promise<number> {
  const peerId = peerIdOfCapabilityKey(key)
  let best = 0
  let bestRecord: CapabilityRecord | undefined
  for (let i = 0; i < values.length; i++) {
    let record: CapabilityRecord
    try {
      record = await verifyCapabilityRecord(values[i] as Uint8Array, { peerId })
    } catch {
      continue
    }
    if (bestRecord === undefined || record.seq > bestRecord.seq || (record.seq === bestRecord.seq && record.issuedAt > bestRecord.issuedAt)) {
      best = i
      bestRecord = record
    }
  }
  return best
}
