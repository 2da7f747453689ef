/**
 * Mount points for a step's extra mounts (RunSpec.mounts): each target is
 * resolved in the root as the step would see it (src/oci/layer/in-root.ts),
 * so a symlink in the image cannot send a mount outside it, and a missing
 * mount point is made where it leaves no trace in the step's change, as
 * Docker leaves none:
 * - an overlay root: in the scratch's init layer (./scratch.ts), which lies
 *   under the upper dir, so the upper dir never holds it;
 * - a dir root: in the root itself, removed after the run (the scan diff
 *   comes later) as long as it is still an empty dir or an empty file.
 */
import { lstat, mkdir, rm, rmdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DirTree, resolveInRoot } from '../../oci/index.ts'
import { SandboxError } from '../errors.ts'
import { LayerTree } from '../rootfs-view.ts'
import type { SandboxMount, SandboxRoot } from './types.ts'

export interface PlacedMounts {
  /** The mounts with targets resolved: absolute, symlink-free paths inside the root. */
  mounts: SandboxMount[]
  /** Removes the mount points made in a dir root; safe to call twice. */
  cleanup: () => Promise<void>
}

/** Whether the mount is a file (a bind of a host file), else a dir. */
async function isFileMount (m: SandboxMount): Promise<boolean> {
  if (m.kind !== 'bind') return false
  const st = await stat(m.source).catch(() => undefined)
  if (st === undefined) throw new SandboxError(`mount source ${m.source} does not exist`)
  return !st.isDirectory()
}

/**
 * Resolves the targets and makes the missing mount points: in `initDir`
 * for an overlay root (required then), in the root for a dir root.
 */
export async function placeMounts (root: SandboxRoot, mounts: readonly SandboxMount[], initDir?: string): Promise<PlacedMounts> {
  const created: string[] = []
  const cleanup = async (): Promise<void> => {
    for (const p of created.splice(0).reverse()) {
      const st = await lstat(p).catch(() => undefined)
      if (st?.isDirectory() === true) await rmdir(p).catch(() => {})
      else if (st?.isFile() === true && st.size === 0) await rm(p, { force: true })
    }
  }
  const tree = root.kind === 'dir' ? new DirTree(root.path) : new LayerTree(root.lowers)
  const base = root.kind === 'dir' ? root.path : initDir
  if (base === undefined) throw new SandboxError('an overlay root needs an init layer for its mount points')
  const placed: SandboxMount[] = []
  try {
    for (const m of mounts) {
      const r = await resolveInRoot(tree, m.target, { makeError: reason => new SandboxError(`mount target ${m.target}: ${reason}`) })
      if (r.comps.length === 0) throw new SandboxError(`mount target ${m.target}: cannot mount over the root`)
      const file = await isFileMount(m)
      if (r.entry !== undefined && r.entry.st.isDirectory() === file) {
        throw new SandboxError(`mount target ${m.target} is ${file ? 'a directory' : 'not a directory'}, the mount ${file ? 'a file' : 'a directory'}`)
      }
      if (r.entry === undefined) {
        for (let i = 1; i <= r.comps.length; i++) {
          const p = join(base, ...r.comps.slice(0, i))
          if (await lstat(p).then(() => true, () => false)) continue
          if (i === r.comps.length && file) await writeFile(p, '', { mode: 0o644 })
          else await mkdir(p, { mode: 0o755 })
          if (root.kind === 'dir') created.push(p)
        }
      }
      placed.push({ ...m, target: `/${r.comps.join('/')}` })
    }
  } catch (err) {
    await cleanup()
    throw err
  }
  return { mounts: placed, cleanup }
}
