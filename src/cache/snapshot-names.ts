/**
 * Names of step snapshots under the builder's `<work dir>/snapshots`, the
 * one place that knows them (the builder makes and looks them up, an
 * imported or network cache makes them, `kiln gc` judges them):
 * - `k-<step key hex>`: a step's overlay upper dir, kept by the builder;
 * - `<diffID hex>`: made from a cache layer (./snapshot.ts), usable by any
 *   step whose cached layer has that diffID.
 * Any other name (dot names are entries being made or removed) is no snapshot.
 */
import { digestHex } from '../content/index.ts'
import type { Digest } from '../content/index.ts'

const HEX = /^[0-9a-f]{64}$/

export function keySnapshotName (key: Digest): string {
  return `k-${digestHex(key)}`
}

export function layerSnapshotName (diffId: Digest): string {
  return digestHex(diffId)
}

export type SnapshotName = { kind: 'key', key: Digest } | { kind: 'layer', diffId: Digest }

export function parseSnapshotName (name: string): SnapshotName | undefined {
  if (name.startsWith('k-') && HEX.test(name.slice(2))) return { kind: 'key', key: `sha256:${name.slice(2)}` as Digest }
  if (HEX.test(name)) return { kind: 'layer', diffId: `sha256:${name}` as Digest }
  return undefined
}
