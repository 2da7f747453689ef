/**
 * Per-run scratch space of the namespace drivers: the mount point of the
 * merged overlay and an "init" lower layer holding the mount points the
 * sandbox needs (/proc, /dev, /etc/hosts + /etc/resolv.conf when the step
 * has network, and the targets of its extra mounts: ./mount-points.ts). The init layer sits above the image's layers, so those mount
 * points never show up in the step's upper dir, hence never in a layer.
 */
import { lstat, mkdir, mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DirTree, resolveInRoot } from '../../oci/index.ts'
import { SandboxError } from '../errors.ts'
import { LayerTree } from '../rootfs-view.ts'
import { placeMounts } from './mount-points.ts'
import type { SandboxMount, SandboxRoot } from './types.ts'
import { scratchPrefix } from '../../util/owner.ts'

export interface Scratch {
  /** Directory the sandbox uses as `/`: the overlay mount point or the plain root dir. */
  rootDir: string
  /** Overlay mount options, when the root is an overlay. */
  overlayOptions?: string
  /** The step's extra mounts, targets resolved in the root (./mount-points.ts). */
  mounts: SandboxMount[]
  cleanup: () => Promise<void>
}

const NETWORK_FILES = ['etc/resolv.conf', 'etc/hosts']

export async function prepareScratch (root: SandboxRoot, network: boolean, mounts: readonly SandboxMount[] = []): Promise<Scratch> {
  if (root.kind === 'dir') {
    const created: string[] = []
    for (const d of ['proc', 'dev']) {
      const p = join(root.path, d)
      try { await lstat(p) } catch { await mkdir(p); created.push(p) }
    }
    const placed = await placeMounts(root, mounts)
    return {
      rootDir: root.path,
      mounts: placed.mounts,
      cleanup: async () => {
        await placed.cleanup()
        for (const p of created) await rm(p, { recursive: true, force: true })
      }
    }
  }
  await markUsed(root.lowers)
  for (const dir of [...root.lowers, root.upper, root.work]) {
    if (/[,:\n]/.test(dir)) throw new SandboxError(`overlay directory ${JSON.stringify(dir)} contains ',' ':' or a newline, which mount options cannot express`)
  }
  const scratch = await mkdtemp(join(tmpdir(), scratchPrefix('kiln-sbx-')))
  const init = join(scratch, 'init')
  const merged = join(scratch, 'merged')
  await mkdir(merged)
  await mkdir(join(init, 'proc'), { recursive: true })
  await mkdir(join(init, 'dev'))
  if (network) {
    await mkdir(join(init, 'etc'))
    for (const f of NETWORK_FILES) await writeFile(join(init, f), '')
  }
  const placed = await placeMounts(root, mounts, init).catch(async (err: unknown) => { await rm(scratch, { recursive: true, force: true }); throw err })
  const lowers = [init, ...root.lowers].join(':')
  return {
    rootDir: merged,
    mounts: placed.mounts,
    overlayOptions: `lowerdir=${lowers},upperdir=${root.upper},workdir=${root.work},userxattr`,
    cleanup: async () => { await rm(scratch, { recursive: true, force: true }) }
  }
}

/**
 * Records that a step stacks on these lower dirs now, in their ctime: the
 * builder's snapshots and unpacked bases are evicted least recently used
 * first (src/builder/snapshots.ts). Setting a dir's times to what they are
 * moves its ctime to now and nothing else: its mtime may be in a layer, and
 * its atime moves whenever anyone lists it (relatime).
 */
export async function markUsed (dirs: readonly string[]): Promise<void> {
  for (const d of dirs) {
    const st = await stat(d).catch(() => undefined)
    if (st !== undefined) await utimes(d, st.atime, st.mtime).catch(() => {})
  }
}

/**
 * The step's working directory resolved inside its root (src/oci/layer/in-root.ts),
 * as an absolute, symlink-free path: the sandbox may then create it with
 * `mkdir -p` on the host side of the chroot without following a link a
 * step made. A plain root dir gets the missing directories now; an overlay
 * root gets them inside the merged mount (mountScript), never in a lower
 * layer.
 */
export async function workdirInRoot (root: SandboxRoot, cwd: string): Promise<string> {
  const makeError = (reason: string): SandboxError => new SandboxError(`working directory ${cwd}: ${reason}`)
  const tree = root.kind === 'dir' ? new DirTree(root.path) : new LayerTree(root.lowers)
  const r = await resolveInRoot(tree, cwd, { create: root.kind === 'dir', makeError })
  if (r.entry !== undefined && !r.entry.st.isDirectory()) throw makeError(`${r.comps.join('/')} is not a directory`)
  if (r.entry === undefined && root.kind === 'dir') await mkdir(join(root.path, ...r.comps))
  return `/${r.comps.join('/')}`
}

/** Moved to src/util/fs.ts (src/sif removes unpacked trees too); re-exported for the builder's callers. */
export { removeTree } from '../../util/fs.ts'
