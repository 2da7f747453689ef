/**
 * What the DHT records kiln signs (tag records, cache records) share: one
 * signer's records for a key are ordered by `seq`, then by `issuedAt`, and
 * the DHT selector picks the newest valid one; invalid records never win.
 */

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
