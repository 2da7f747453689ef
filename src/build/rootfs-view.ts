/**
 * Reading a stage's filesystem without mounting it: a stack of layer dirs
 * (top-most first; step upper dirs with overlay whiteouts, then the base
 * rootfs) looked up the way overlayfs would, for COPY --from and for
 * checking whether a path exists below a step.
 */
import { lstat, readdir } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { join } from 'node:path'

function whiteout (st: Stats): boolean { return st.isCharacterDevice() && st.rdev === 0 }

/** The top-most dir holding path (relative, no leading slash), unless a whiteout hides it. */
export async function lookup (layers: readonly string[], path: string): Promise<{ dir: string, st: Stats } | undefined> {
  for (const dir of layers) {
    const st = await lstat(join(dir, path)).catch(() => undefined)
    if (st === undefined) continue
    if (whiteout(st)) return undefined
    return { dir, st }
  }
  return undefined
}

/** Names in a merged dir, with the layer each comes from. */
export async function listMerged (layers: readonly string[], path: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const hidden = new Set<string>()
  for (const dir of layers) {
    const st = await lstat(join(dir, path)).catch(() => undefined)
    if (st === undefined) continue
    if (!st.isDirectory()) break
    for (const name of await readdir(join(dir, path))) {
      if (out.has(name) || hidden.has(name)) continue
      const cst = await lstat(join(dir, path, name))
      if (whiteout(cst)) hidden.add(name); else out.set(name, dir)
    }
  }
  return out
}
