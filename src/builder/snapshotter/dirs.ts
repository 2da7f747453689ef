/**
 * The directories snapshotters share: a stage's layer dirs, fresh upper
 * dirs, and step snapshots kept under the work dir's snapshots/ by the
 * names src/cache gives them.
 */
import { mkdir, mkdtemp, rename, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Digest } from '../../content/index.ts'
import { keySnapshotName, layerSnapshotName } from '../../cache/index.ts'
import type { CachedLayer } from '../../cache/index.ts'
import { extractLayer } from '../../oci/layer/extract.ts'
import type { LayerEntry } from '../../oci/layer/write.ts'
import { unpackedBase } from '../base.ts'
import { LayerTree } from '../rootfs-view.ts'
import { findOpaqueDirs } from '../sandbox/opaque.ts'
import { removeTree } from '../sandbox/index.ts'
import type { BuildScope, LayerDescriptor, StageState } from '../stage.ts'
import { diffOverlayUpper } from './diff.ts'

const exists = async (p: string): Promise<boolean> => await stat(p).then(() => true, () => false)

/** The stage's filesystem as layer dirs, top-most first: its root (scan), or its snapshots over the unpacked base. */
export async function stageDirs (scope: BuildScope, st: StageState): Promise<string[]> {
  if (st.root !== undefined) return [st.root]
  for (const dir of st.uppers) await materialized(dir, scope.options.signal)
  return [...st.uppers, await unpackedBase(scope.store, st.base.bottom, scope.dirs.rootfs, scope.options.signal)]
}

/**
 * Snapshots named before they exist, by dir: a layer written straight from
 * its entries (a scratch stage's ADD of an archive) needs its snapshot only
 * when a later step reads the stage's files, and most never do. Made from
 * the layer (which has no whiteout or opaque marker) on first use.
 */
const lazySnapshots = new Map<string, { store: BuildScope['store'], layer: LayerDescriptor }>()
const materializing = new Map<string, Promise<void>>()

/** The snapshot dir of a step whose layer is `layer`; extracted from it when stageDirs first needs it. */
export function lazySnapshot (scope: BuildScope, key: Digest, layer: LayerDescriptor): string {
  const dest = join(scope.dirs.snapshots, keySnapshotName(key))
  lazySnapshots.set(dest, { store: scope.store, layer })
  return dest
}

async function materialized (dir: string, signal?: AbortSignal): Promise<void> {
  const lazy = lazySnapshots.get(dir)
  if (lazy === undefined) return
  let p = materializing.get(dir)
  if (p === undefined) {
    p = extractSnapshot(lazy.store, lazy.layer, dir, signal).then(() => { lazySnapshots.delete(dir) }).finally(() => { materializing.delete(dir) })
    materializing.set(dir, p)
  }
  await p
}

async function extractSnapshot (store: BuildScope['store'], layer: LayerDescriptor, dest: string, signal?: AbortSignal): Promise<void> {
  if (await exists(dest)) return
  await mkdir(dirname(dest), { recursive: true })
  const tmp = await mkdtemp(join(dirname(dest), '.lazy-'))
  try {
    await extractLayer(store.read(layer.digest, signal !== undefined ? { signal } : {}), tmp, signal !== undefined ? { signal } : {})
    await rename(tmp, dest).catch(async (err: unknown) => { if (!await exists(dest)) throw err })
  } finally {
    await removeTree(tmp)
  }
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
