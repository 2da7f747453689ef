/**
 * Path resolution inside an extraction root without ever following a symlink
 * out of it. Every component is checked with lstat. A symlink met on the way
 * is resolved as the container would see it (an absolute target starts again
 * at the root, a relative one from the link's directory); a target that
 * climbs above the root with `..` is refused. Callers then open the last
 * component with O_NOFOLLOW, so the final write never goes through a link.
 *
 * The root must not be modified by anyone else during an extraction.
 */
import { lstat, mkdir, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { MAX_SYMLINK_HOPS } from '../constants.ts'
import { SymlinkEscapeError, UnsafePathError } from '../errors.ts'

/**
 * Splits an entry name into clean components: leading `/` and `.` components
 * dropped, `..` applied lexically. Throws `makeError` when `..` climbs out of
 * the root or the name holds a NUL byte.
 */
export function cleanComponents (name: string, makeError: (reason: string) => Error = r => new UnsafePathError(name, r)): string[] {
  if (name.includes('\0')) throw makeError('NUL byte in path')
  const out: string[] = []
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue
    if (c === '..') {
      if (out.length === 0) throw makeError('".." climbs out of the root')
      out.pop()
      continue
    }
    out.push(c)
  }
  return out
}

function isEnoent (err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT'
}

export class SafeRoot {
  readonly dir: string

  /** `dir` must be an absolute, real (symlink-free) path to an existing directory. */
  constructor (dir: string) {
    this.dir = dir
  }

  path (comps: readonly string[]): string {
    return join(this.dir, ...comps)
  }

  /**
   * Resolves directory components to the real directory they name inside the
   * root, following in-root symlinks. With `create`, missing directories are
   * made (mode 0755); without, a missing one gives undefined. Throws
   * SymlinkEscapeError for a link that leaves the root, UnsafePathError when
   * a component is not a directory.
   */
  async resolveDir (comps: readonly string[], entry: string, create: boolean): Promise<string[] | undefined> {
    const cur: string[] = []
    const queue = [...comps]
    let hops = 0
    while (queue.length > 0) {
      const c = queue.shift() as string
      if (c === '' || c === '.') continue
      if (c === '..') {
        if (cur.length === 0) throw new SymlinkEscapeError(entry, 'a symlink on its path points outside the root')
        cur.pop()
        continue
      }
      const p = join(this.dir, ...cur, c)
      let st
      try {
        st = await lstat(p)
      } catch (err) {
        if (!isEnoent(err)) throw err
        if (!create) return undefined
        await mkdir(p, { mode: 0o755 })
        cur.push(c)
        continue
      }
      if (st.isDirectory()) {
        cur.push(c)
      } else if (st.isSymbolicLink()) {
        if (++hops > MAX_SYMLINK_HOPS) throw new SymlinkEscapeError(entry, `more than ${MAX_SYMLINK_HOPS} symlinks on its path`)
        const target = await readlink(p)
        if (target.startsWith('/')) cur.length = 0
        queue.unshift(...target.split('/'))
      } else {
        throw new UnsafePathError(entry, `${[...cur, c].join('/')} on its path is not a directory`)
      }
    }
    return cur
  }
}
