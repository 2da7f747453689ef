/**
 * The in-root path resolver: the one place where kiln turns a path inside an
 * image, a stage or an extraction target into a place on the host.
 *
 * Terms:
 * - root: the directory tree that stands for a container's `/`. It is seen
 *   through a `RootTree`, which answers for one entry at a time and never
 *   follows a symlink itself (a plain dir: `DirTree`; a stack of overlay
 *   layer dirs: the builder's `LayerTree`).
 * - components: a path split on `/`, with no `''`, `.` or `..` left; the
 *   resolver returns these, and every parent they name is a real directory
 *   of the tree (never a symlink).
 *
 * Semantics are the kernel's `openat2(RESOLVE_IN_ROOT)` and BuildKit's
 * `fs.RootPath` / securejoin: a symlink met on the way is resolved as the
 * container would see it (an absolute target starts again at the root, a
 * relative one from the link's directory), `..` at the root stays at the
 * root, and a path that does not exist is completed lexically from the last
 * existing directory. So no symlink, absolute or relative, in any component,
 * through any number of hops, ever leads outside the root. More than
 * MAX_SYMLINK_HOPS links on one path is an error (the kernel's ELOOP).
 *
 * The tree must not change while a path is resolved and used: callers
 * resolve only in trees that no sandboxed process can write at that moment
 * (step snapshots, a finished stage root, a fresh extraction target), and
 * open the last component with O_NOFOLLOW where they write.
 */
import { lstat, mkdir, readlink } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { join } from 'node:path'
import { MAX_SYMLINK_HOPS } from '../constants.ts'

/** One entry of a tree: its lstat and where it is on the host. */
export interface TreeEntry {
  st: Stats
  /** Host path of the entry; its parents are real directories, so opening it follows no link but its own. */
  host: string
}

/** A root seen one entry at a time. No method follows a symlink. */
export interface RootTree {
  /**
   * The entry at `comps`, whose parents are directories of this tree (as the
   * resolver guarantees); undefined when there is none. `[]` is the root.
   */
  entry: (comps: readonly string[]) => Promise<TreeEntry | undefined>
  /** The target of the symlink at `comps` (an entry that is a symlink). */
  readlink: (comps: readonly string[]) => Promise<string>
  /** Makes the directory `comps` (its parent exists); only trees that can be written have it. */
  mkdir?: (comps: readonly string[]) => Promise<void>
}

export interface ResolveOptions {
  /** Resolve a symlink in the last component too (default true); false gives the link itself. */
  follow?: boolean
  /** Where a relative path starts (components, already resolved); default the root. */
  cwd?: readonly string[]
  /** Make missing directories on the way (the tree must have `mkdir`); the last component is not made. */
  create?: boolean
  /** Builds the error thrown when the path cannot be resolved; `kind` says why, `reason` says it for people. */
  makeError?: (reason: string, kind: InRootFailure) => Error
}

export interface Resolved {
  /** The resolved path: no symlink among its parents, and none at the end when following. */
  comps: string[]
  /** What is there, or undefined when the path does not exist. */
  entry?: TreeEntry
}

/** Why a path cannot be resolved: a NUL byte, too many symlinks (a loop), or a non-directory used as a directory. */
export type InRootFailure = 'nul' | 'loop' | 'not-a-directory'

/** A path that cannot be resolved (see InRootFailure). */
export class InRootPathError extends Error {
  static override readonly name = 'InRootPathError'
  override readonly name = InRootPathError.name
  readonly code = 'ERR_IN_ROOT_PATH'
  readonly path: string
  readonly kind: InRootFailure
  constructor (path: string, reason: string, kind: InRootFailure) {
    super(`cannot resolve ${JSON.stringify(path)} inside the root: ${reason}`)
    this.path = path
    this.kind = kind
  }
}

/** Splits a path (or a symlink target) into raw components, dropping `''` and `.`; `..` is kept for the resolver. */
function split (path: string): string[] {
  return path.split('/').filter(c => c !== '' && c !== '.')
}

/**
 * Resolves `path` inside `tree`. Throws (through `makeError`) for a NUL
 * byte, a link loop, or a component that exists but is not a directory
 * while more components follow it.
 */
export async function resolveInRoot (tree: RootTree, path: string, options: ResolveOptions = {}): Promise<Resolved> {
  const fail = options.makeError ?? ((reason: string, kind: InRootFailure) => new InRootPathError(path, reason, kind))
  if (path.includes('\0')) throw fail('NUL byte in path', 'nul')
  const follow = options.follow ?? true
  const cur: string[] = path.startsWith('/') ? [] : [...(options.cwd ?? [])]
  const queue = split(path)
  let hops = 0
  /** Once a component is missing, the rest is applied lexically: nothing below it exists to follow. */
  let missing = false
  while (queue.length > 0) {
    const c = queue.shift() as string
    if (c === '..') {
      cur.pop()
      continue
    }
    const next = [...cur, c]
    if (missing) { cur.push(c); continue }
    let e = await tree.entry(next)
    if (e === undefined && options.create === true && queue.length > 0) {
      if (tree.mkdir === undefined) throw new TypeError('resolveInRoot: create needs a tree with mkdir')
      await tree.mkdir(next)
      e = await tree.entry(next)
    }
    if (e === undefined) { missing = true; cur.push(c); continue }
    if (e.st.isSymbolicLink() && (queue.length > 0 || follow)) {
      if (++hops > MAX_SYMLINK_HOPS) throw fail(`more than ${MAX_SYMLINK_HOPS} symlinks on the path`, 'loop')
      const target = await tree.readlink(next)
      if (target.includes('\0')) throw fail('NUL byte in a symlink target', 'nul')
      if (target.startsWith('/')) cur.length = 0
      queue.unshift(...split(target))
      continue
    }
    // As the kernel, `file/x` and `file/..` are both ENOTDIR.
    if (!e.st.isDirectory() && queue.length > 0) throw fail(`${next.join('/')} is not a directory`, 'not-a-directory')
    cur.push(c)
  }
  if (missing) return { comps: cur }
  const entry = await tree.entry(cur)
  return entry === undefined ? { comps: cur } : { comps: cur, entry }
}

function isEnoent (err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR'
}

/** A plain directory as a root. `dir` must be an absolute, real (symlink-free) path. */
export class DirTree implements RootTree {
  readonly dir: string

  constructor (dir: string) {
    this.dir = dir
  }

  /** Host path of resolved components. */
  path (comps: readonly string[]): string {
    return join(this.dir, ...comps)
  }

  async entry (comps: readonly string[]): Promise<TreeEntry | undefined> {
    const host = this.path(comps)
    try {
      return { st: await lstat(host), host }
    } catch (err) {
      if (isEnoent(err)) return undefined
      throw err
    }
  }

  async readlink (comps: readonly string[]): Promise<string> {
    return await readlink(this.path(comps))
  }

  async mkdir (comps: readonly string[]): Promise<void> {
    await mkdir(this.path(comps), { mode: 0o755 })
  }
}
