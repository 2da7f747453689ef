/**
 * What "the data dir is private" means to the tests (docs/security.md):
 * nothing in it that group or others may read, write or enter, except
 * image content trees, which keep the image's modes and are protected by
 * the 0700 dirs above them.
 */
import { lstat, readdir } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * Image content, by data-dir-relative path: each child of build/rootfs and
 * build/snapshots is an unpacked root or a step snapshot, and the private
 * temp dirs under build/tmp and jobs (agents' contexts) hold such trees.
 */
export function isImageContent (rel: string): boolean {
  const parts = rel.split('/')
  if (parts[0] === 'build' && (parts[1] === 'rootfs' || parts[1] === 'snapshots')) return parts.length >= 3
  if (parts[0] === 'build' && parts[1] === 'tmp') return parts.length >= 4
  if (parts[0] === 'jobs') return parts.length >= 3
  return false
}

/** Every path under dir (relative, with its mode in octal) that group or others may use, image content aside. */
export async function tooOpenIn (dir: string, rel = ''): Promise<string[]> {
  const out: string[] = []
  for (const name of await readdir(join(dir, rel))) {
    const path = rel === '' ? name : `${rel}/${name}`
    const st = await lstat(join(dir, path))
    if (st.isSymbolicLink()) continue
    if (!isImageContent(path) && (st.mode & 0o077) !== 0) out.push(`${path} ${(st.mode & 0o7777).toString(8)}`)
    if (st.isDirectory()) out.push(...await tooOpenIn(dir, path))
  }
  return out
}
