/**
 * What the DHT records kiln signs (tag records, cache records) share: one
 * signer's records for a key are ordered by `seq`, then by `issuedAt`, and
 * the DHT selector picks the newest valid one; invalid records never win.
 * Each is published under a per-signer key plus a provide of a discovery
 * key, and resolved by finding the providers, then reading each signer's key.
 */
import type { CID } from 'multiformats/cid'
import type { KilnNode } from './node.ts'
import { NotFoundError } from '@libp2p/interface'
import { isErrorOf } from '../util/error-class.ts'

export interface SequencedRecord {
  payload: { seq: number }
  envelope: { issuedAt: number }
}

/** Whether a is newer than b: higher seq, then later issuedAt. */
export function newerRecord (a: SequencedRecord, b: SequencedRecord): boolean {
  return a.payload.seq > b.payload.seq || (a.payload.seq === b.payload.seq && a.envelope.issuedAt > b.envelope.issuedAt)
}

/** DHT selector: the index of the valid value whose record is newest (0 when none is valid). */
export async function selectNewestRecord (values: Uint8Array[], verify: (value: Uint8Array) => Promise<SequencedRecord>): Promise<number> {
  let best = 0
  let bestRecord: SequencedRecord | undefined
  for (let i = 0; i < values.length; i++) {
    const record = await verify(values[i] as Uint8Array).catch(() => undefined)
    if (record !== undefined && (bestRecord === undefined || newerRecord(record, bestRecord))) { best = i; bestRecord = record }
  }
  return best
}

/**
 * Publishes one signed record: a DHT put of `value` under `key`, then a
 * provide of `discovery` so resolvers find this signer. Returns how many
 * peers stored the record (the local DHT keeps it whatever that number).
 */
export async function putAndProvide (node: KilnNode, key: Uint8Array, value: Uint8Array, discovery: CID, signal?: AbortSignal): Promise<number> {
  let storedOn = 0
  for await (const event of node.services.dht.put(key, value, { signal })) {
    // Only PUT_VALUE answers count: the query's GET_CLOSEST_PEERS answers are PEER_RESPONSE events too, and a peer whose validator refuses the record answers none.
    if (event.name === 'PEER_RESPONSE' && event.messageName === 'PUT_VALUE') storedOn++
  }
  for await (const _ of node.services.dht.provide(discovery, { signal })) { /* drain */ }
  return storedOn
}

/**
 * The peers that provide `discovery`, at most `maxSigners`, this node first
 * when `includeSelf`. Stops walking once it has enough (a provider lookup
 * otherwise runs to its timeout on a sparse network); a timeout is not an error.
 */
export async function findSigners (node: KilnNode, discovery: CID, options: { maxSigners: number, includeSelf: boolean, signal: AbortSignal }): Promise<string[]> {
  const self = node.peerId.toString()
  const signers = new Set<string>(options.includeSelf ? [self] : [])
  try {
    for await (const event of node.services.dht.findProviders(discovery, { signal: options.signal })) {
      if (event.name !== 'PROVIDER') continue
      for (const p of event.providers) if (options.includeSelf || p.id.toString() !== self) signers.add(p.id.toString())
      if (signers.size >= options.maxSigners) break
    }
  } catch (err) {
    if (!options.signal.aborted) throw err
  }
  return [...signers].slice(0, options.maxSigners)
}

/**
 * One signer's record under `key` from the DHT: the newest valid answer, or
 * with `firstValid` the first (when a signer's records for a key never differ
 * in what they assert). Undefined when there is none; a lookup error with no
 * valid answer is thrown (not found and the caller's abort are not errors).
 */
export async function readSignerRecord<R extends SequencedRecord> (
  node: KilnNode, key: Uint8Array, verify: (value: Uint8Array) => Promise<R>, signal: AbortSignal, firstValid = false
): Promise<R | undefined> {
  let best: R | undefined
  try {
    for await (const event of node.services.dht.get(key, { signal })) {
      if (event.name !== 'VALUE') continue
      const record = await verify(event.value).catch(() => undefined)
      if (record !== undefined && (best === undefined || newerRecord(record, best))) best = record
      if (firstValid && best !== undefined) break
    }
  } catch (err) {
    if (best === undefined && !signal.aborted && !isErrorOf(err, NotFoundError)) throw err
  }
  return best
}
