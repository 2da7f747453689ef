/**
 * Entry names and extraction roots. Entry names are cleaned lexically and
 * refused when they climb out with `..` (a well-formed layer never does);
 * the directories on an entry's path are resolved by the in-root resolver
 * (./in-root.ts), so a symlink on the way is followed only inside the root,
 * as the container would see it, `..` in a link target stopping at the
 * root. Callers then open the last component with O_NOFOLLOW, so the final
 * write never goes through a link.
 *
 * The root must not be modified by anyone else during an extraction.
 * Resolved directories are remembered (an extraction resolves the same
 * parents thousands of times); whoever removes or replaces anything in the
 * root, or makes a symlink in it, calls SafeRoot.forget() before resolving
 * again, so a remembered path never stands for what a link now redirects.
 */
import { DirTree, resolveInRoot } from './in-root.ts'
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

/**
 * An extraction target as a root: directory components are resolved with
 * the in-root resolver (./in-root.ts), so a symlink on an entry's path,
 * whatever its target, is followed only inside the root.
 */
export class SafeRoot {
  readonly dir: string
  private readonly tree: DirTree
  /**
   * Directory components resolved before (`/`-joined) to the real ones they
   * named. Entries stay true while nothing in the root is removed or
   * replaced and no symlink is made: whoever changes the root in those ways
   * calls forget().
   */
  private readonly resolved = new Map<string, string[]>()

  /** `dir` must be an absolute, real (symlink-free) path to an existing directory. */
  constructor (dir: string) {
    this.dir = dir
    this.tree = new DirTree(dir)
  }

  path (comps: readonly string[]): string {
    return this.tree.path(comps)
  }

  /**
   * Resolves directory components to the real directory they name inside the
   * root, following symlinks inside it. With `create`, missing directories
   * are made (mode 0755); without, a missing one gives undefined. Throws
   * SymlinkEscapeError for a symlink loop, UnsafePathError when a component
   * is not a directory.
   */
  async resolveDir (comps: readonly string[], entry: string, create: boolean): Promise<string[] | undefined> {
    if (comps.length === 0) return []
    const key = comps.join('/')
    const known = this.resolved.get(key)
    if (known !== undefined) return [...known]
    const r = await resolveInRoot(this.tree, key, {
      create,
      makeError: (reason, kind) => kind === 'loop' ? new SymlinkEscapeError(entry, reason) : new UnsafePathError(entry, reason)
    })
    if (r.entry === undefined) {
      if (!create) return undefined
      await this.tree.mkdir(r.comps)
    } else if (!r.entry.st.isDirectory()) {
      throw new UnsafePathError(entry, `${r.comps.join('/')} on its path is not a directory`)
    }
    this.resolved.set(key, r.comps)
    return [...r.comps]
  }

  /** Drops every remembered resolution: call after removing or replacing anything in the root, or making a symlink. */
  forget (): void {
    this.resolved.clear()
  }
}
