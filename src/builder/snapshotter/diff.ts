/**
 * Differs: what a step changed, as layer entries.
 *
 * - `diffOverlayUpper`: the step ran on an overlay, so its upper dir holds
 *   exactly the changes. Overlay whiteouts (char device 0/0) become OCI
 *   whiteouts; opaque dirs (xattr user.overlay.opaque, userxattr mode) become
 *   opaque markers. Node cannot read xattrs, so opacity is asked of the
 *   kernel: `opaqueDirs` is injected (see ./opaque.ts).
 * - `snapshotTree` + `diffSnapshot`: for drivers without overlay, the root is
 *   walked before and after the step and compared by type, mode, size, mtime,
 *   ctime, inode and link target.
 *
 * Device nodes, fifos and sockets a step creates are not carried into layers.
 */
import { lstat, readdir, readlink } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { join } from 'node:path'
import type { LayerEntry } from '../../oci/layer/write.ts'

export type { LayerEntry }

/** Byte order by path (what the layer writer does too), for stable output and tests. */
function sortEntries (entries: LayerEntry[]): LayerEntry[] {
  const key = (e: LayerEntry): string => e.type === 'opaque' ? `${e.path}/\u0000` : e.path
  return entries.sort((a, b) => Buffer.compare(Buffer.from(key(a)), Buffer.from(key(b))))
}

function isWhiteout (st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0
}

/** The layer entry of a file on disk (kind, permission bits, mtime), or undefined for what layers do not carry. */
export async function entryFor (path: string, full: string, st: Stats): Promise<LayerEntry | undefined> {
  const mode = st.mode & 0o7777
  const mtime = Math.floor(st.mtimeMs / 1000)
  if (st.isDirectory()) return { type: 'directory', path, mode, mtime }
  if (st.isFile()) return { type: 'file', path, mode, mtime, source: full }
  if (st.isSymbolicLink()) return { type: 'symlink', path, mtime, target: await readlink(full) }
  return undefined
}

export interface OverlayDiffOptions {
  /**
   * Of the given dirs of the upper dir (relative paths), those marked opaque.
   * Only dirs that also exist in a lower layer are asked about.
   */
  opaqueDirs: (upper: string, dirs: string[]) => Promise<Set<string>>
  /** Whether a relative path is a dir in any lower layer. */
  inLowers: (path: string) => Promise<boolean>
}

export async function diffOverlayUpper (upper: string, options: OverlayDiffOptions): Promise<LayerEntry[]> {
  const entries: LayerEntry[] = []
  const candidates: string[] = []
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(rel === '' ? upper : join(upper, rel))).sort()
    for (const name of names) {
      const path = rel === '' ? name : `${rel}/${name}`
      const full = join(upper, path)
      const st = await lstat(full)
      if (isWhiteout(st)) { entries.push({ type: 'whiteout', path }); continue }
      const e = await entryFor(path, full, st)
      if (e === undefined) continue
      entries.push(e)
      if (st.isDirectory()) {
        if (await options.inLowers(path)) candidates.push(path)
        await walk(path)
      }
    }
  }
  await walk('')
  if (candidates.length > 0) {
    for (const path of await options.opaqueDirs(upper, candidates)) entries.push({ type: 'opaque', path })
  }
  return sortEntries(entries)
}

export interface SnapshotEntry {
  kind: 'dir' | 'file' | 'symlink' | 'other'
  mode: number
  size: number
  mtimeNs: bigint
  ctimeNs: bigint
  ino: bigint
  target?: string
}

export type Snapshot = Map<string, SnapshotEntry>

/** Records the state of every entry under root (not following symlinks). */
export async function snapshotTree (root: string, skip: ReadonlySet<string> = DEFAULT_SKIP): Promise<Snapshot> {
  const snap: Snapshot = new Map()
  const walk = async (rel: string): Promise<void> => {
    for (const name of await readdir(rel === '' ? root : join(root, rel))) {
      const path = rel === '' ? name : `${rel}/${name}`
      if (skip.has(path)) continue
      const st = await lstat(join(root, path), { bigint: true })
      const kind = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : 'other'
      const e: SnapshotEntry = { kind, mode: Number(st.mode & 0o7777n), size: Number(st.size), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino }
      if (kind === 'symlink') e.target = await readlink(join(root, path))
      snap.set(path, e)
      if (kind === 'dir') await walk(path)
    }
  }
  await walk('')
  return snap
}

/** Mount points the sandbox drivers create in a plain root; never part of a layer. */
const DEFAULT_SKIP: ReadonlySet<string> = new Set(['proc', 'dev'])

function changed (a: SnapshotEntry, b: SnapshotEntry): boolean {
  if (a.kind !== b.kind || a.mode !== b.mode || a.target !== b.target) return true
  if (a.kind === 'dir') return false
  return a.size !== b.size || a.mtimeNs !== b.mtimeNs || a.ctimeNs !== b.ctimeNs || a.ino !== b.ino
}

function parentsOf (path: string): string[] {
  const parts = path.split('/')
  return parts.slice(0, -1).map((_p, i) => parts.slice(0, i + 1).join('/'))
}

/**
 * What changed under root since `before`: new and changed entries, their
 * parent dirs (as the overlay differ reports copied-up parents), and
 * whiteouts for the top-most deleted paths.
 */
export async function diffSnapshot (root: string, before: Snapshot, skip: ReadonlySet<string> = DEFAULT_SKIP): Promise<LayerEntry[]> {
  const after = await snapshotTree(root, skip)
  const include = new Set<string>()
  for (const [path, now] of after) {
    const was = before.get(path)
    if (was === undefined || changed(was, now)) {
      include.add(path)
      for (const p of parentsOf(path)) include.add(p)
    }
  }
  const entries: LayerEntry[] = []
  for (const path of include) {
    const full = join(root, path)
    const e = await entryFor(path, full, await lstat(full))
    if (e !== undefined) entries.push(e)
  }
  for (const path of before.keys()) {
    if (after.has(path)) continue
    if (parentsOf(path).some(p => !after.has(p) && before.has(p))) continue
    entries.push({ type: 'whiteout', path })
    for (const p of parentsOf(path)) {
      if (!include.has(p) && after.has(p)) {
        include.add(p)
        const e = await entryFor(p, join(root, p), await lstat(join(root, p)))
        if (e !== undefined) entries.push(e)
      }
    }
  }
  // A path replaced by a different kind (dir <-> file) needs no whiteout: the new entry overwrites it.
  return sortEntries(entries)
}
