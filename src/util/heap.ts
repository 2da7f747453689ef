/**
 * V8 tuning for a process that streams gigabytes through fresh Buffers.
 *
 * Every byte kiln receives over TLS, reads from a blob file or hashes
 * arrives in a newly allocated ArrayBuffer, and V8 starts a full
 * mark-compact each time such "external" memory has grown by a fixed 64 MiB
 * since the last one: about twenty full collections per GiB moved, on
 * both ends, whatever the heap holds (docs/network.md measured 1.5 s of
 * collector time on the serving agent per 1 GiB pull). With external
 * memory counted in V8's global limit instead, collections follow the
 * heap's own growth: a 1 GiB `kiln pull` fell from ~5.5 s to ~3.7 s, peak
 * RSS rose from ~280 to ~350 MB.
 */
import { setFlagsFromString } from 'node:v8'

/** Sets the flag (setting it again changes nothing); call before the process moves bulk data. */
export function tuneHeapForBulkData (): void {
  setFlagsFromString('--external-memory-accounted-in-global-limit')
}
