/**
 * Turns an imported cache layer into the builder's step snapshot: an
 * overlay upper dir under `<build workDir>/snapshots/<diffID hex>` holding
 * exactly the layer's changes, deletions as overlay whiteouts (char device
 * 0/0, which an ordinary user may create on Linux 5.8 and later). The
 * builder uses a cache hit only when that snapshot exists, because later
 * RUN steps stack on it.
 *
 * Written to a temp dir and renamed into place, and only when the extracted
 * tar hashes to the record's diffID. A layer with an opaque-dir marker is
 * skipped ('unsupported'): overlay marks those with an xattr, which node
 * cannot set; the step then simply runs again.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { lstat, mkdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { BlobReader, Digest } from '../content/index.ts'
import { OPAQUE_WHITEOUT, SafeRoot, WHITEOUT_PREFIX, cleanComponents, decompress, extractLayer, layerCompression, readTar } from '../oci/index.ts'
import type { Descriptor } from '../oci/index.ts'
import { mkdirPrivate } from '../util/fs.ts'
import { ownerTag } from '../util/owner.ts'
import { layerSnapshotName } from './snapshot-names.ts'

export type SnapshotOutcome = 'created' | 'present' | 'unsupported'

async function exists (path: string): Promise<boolean> {
  try { await lstat(path); return true } catch { return false }
}

/** Whiteout paths (relative, of the deleted entries) in a layer; undefined when it has an opaque marker. */
async function whiteoutsOf (store: BlobReader, layer: Descriptor): Promise<string[] | undefined> {
  const compression = layerCompression(layer.mediaType)
  if (compression === undefined) return undefined
  const out: string[] = []
  for await (const entry of readTar(decompress(store.read(layer.digest), compression))) {
    const name = entry.header.name.replace(/\/+$/, '')
    const slash = name.lastIndexOf('/')
    const base = name.slice(slash + 1)
    if (base === OPAQUE_WHITEOUT) return undefined
    if (base.startsWith(WHITEOUT_PREFIX)) out.push(`${slash < 0 ? '' : name.slice(0, slash + 1)}${base.slice(WHITEOUT_PREFIX.length)}`)
  }
  return out
}

export async function materializeSnapshot (store: BlobReader, layer: Descriptor, diffId: Digest, snapshotsDir: string): Promise<SnapshotOutcome> {
  const dest = join(snapshotsDir, layerSnapshotName(diffId))
  if (await exists(dest)) return 'present'
  const whiteouts = await whiteoutsOf(store, layer)
  if (whiteouts === undefined) return 'unsupported'
  await mkdirPrivate(snapshotsDir)
  const tmp = join(snapshotsDir, `.import-${ownerTag()}-${randomBytes(6).toString('hex')}`)
  await mkdir(tmp)
  try {
    const r = await extractLayer(store.read(layer.digest), tmp)
    if (r.diffId !== diffId) return 'unsupported'
    const root = new SafeRoot(tmp)
    for (const path of whiteouts) {
      const comps = cleanComponents(path)
      if (comps.length === 0) return 'unsupported'
      // The layer's own symlinks may stand on the whiteout's path: resolve it inside the snapshot.
      const dir = await root.resolveDir(comps.slice(0, -1), path, true) as string[]
      const at = root.path([...dir, comps[comps.length - 1] as string])
      try {
        await promisify(execFile)('mknod', [at, 'c', '0', '0'])
      } catch {
        return 'unsupported' // an old kernel or a filesystem that refuses whiteout devices
      }
    }
    try {
      await rename(tmp, dest)
    } catch (err) {
      if (await exists(dest)) return 'present' // another import won the race
      throw err
    }
    return 'created'
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}
