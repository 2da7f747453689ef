/**
 * The directories snapshotters share: a stage's layer dirs, fresh upper
 * dirs, and step snapshots kept under the work dir's snapshots/ by the
 * names src/cache gives them.
 */
import { mkdir, mkdtemp, rename, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Digest } from '../../content/index.ts'
import { keySnapshotName, layerSnapshotName } from '../../cache/index.ts'
import type { CachedLayer } from '../../cache/index.ts'
import type { LayerEntry } from '../../oci/layer/write.ts'
import { unpackedBase } from '../base.ts'
import { LayerTree } from '../rootfs-view.ts'
import { findOpaqueDirs } from '../sandbox/opaque.ts'
import { removeTree } from '../sandbox/index.ts'
import type { BuildScope, StageState } from '../stage.ts'
import { diffOverlayUpper } from './diff.ts'

const exists = async (p: string): Promise<boolean> => await stat(p).then(() => true, () => false)

/** The stage's filesystem as layer dirs, top-most first: its root (scan), or its snapshots over the unpacked base. */
export async function stageDirs (scope: BuildScope, st: StageState): Promise<string[]> {
  return st.root !== undefined
    ? [st.root]
    : [...st.uppers, await unpackedBase(scope.store, st.base.bottom, scope.dirs.rootfs, scope.options.signal)]
}

/** A temp dir holding an empty `upper` and overlay `work` dir; the caller removes `dir`. */
export async function newUpper (scope: BuildScope): Promise<{ dir: string, upper: string, work: string }> {
  const dir = await mkdtemp(join(scope.dirs.tmp, 'step-'))
  const upper = join(dir, 'upper'); const work = join(dir, 'work')
  await mkdir(upper); await mkdir(work)
  return { dir, upper, work }
}

/** Snapshot dirs are named by step key: a step's snapshot is a lower dir before its layer is even written. */
export async function keepSnapshot (scope: BuildScope, upper: string, key: Digest): Promise<string> {
  const dest = join(scope.dirs.snapshots, keySnapshotName(key))
  if (await exists(dest)) { await removeTree(upper); return dest }
  await rename(upper, dest).catch(async () => { await removeTree(upper) })
  return dest
}

/** The snapshot for a cached step: the builder's own (by step key), or one made for the layer itself (by diffID: imported caches). */
export async function findSnapshot (scope: BuildScope, key: Digest, hit: CachedLayer): Promise<string | undefined> {
  for (const name of [keySnapshotName(key), layerSnapshotName(hit.diffId)]) {
    const dir = join(scope.dirs.snapshots, name)
    if (await exists(dir)) return dir
  }
  return undefined
}

/** An overlay upper dir's change as layer entries; `lowers` (RUN) tells which dirs the step replaced rather than made. */
export async function diffUpper (upper: string, lowers: string[] | undefined): Promise<LayerEntry[]> {
  const below = lowers === undefined ? undefined : new LayerTree(lowers)
  return await diffOverlayUpper(upper, {
    opaqueDirs: findOpaqueDirs,
    inLowers: async p => (await below?.entry(p.split('/')))?.st.isDirectory() === true
  })
}
