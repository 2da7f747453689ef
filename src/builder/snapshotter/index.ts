/**
 * Snapshotters (./types.ts): overlay and scan, and the dirs they share.
 */
import type { LayerRecorder } from '../layers.ts'
import type { BuildScope } from '../stage.ts'
import { createOverlaySnapshotter } from './overlay.ts'
import { createScanSnapshotter } from './scan.ts'
import type { Snapshotter, SnapshotterKind } from './types.ts'

export type { LayerEdit, Snapshotter, SnapshotterKind } from './types.ts'
export { newUpper, stageDirs } from './dirs.ts'

export function createSnapshotter (kind: SnapshotterKind, scope: BuildScope, layers: LayerRecorder): Snapshotter {
  return kind === 'scan' ? createScanSnapshotter(scope, layers) : createOverlaySnapshotter(scope, layers)
}
