/**
 * The entries of a context that a build sees: every path the rules do not
 * exclude, and the dirs that lead to them (an excluded dir with an
 * exception inside appears, holding only what the exception takes back).
 * Regular files, dirs and symlinks; other kinds are left out. Depth first,
 * names sorted, a dir before what it holds. Only lstat and readdir: nothing
 * excluded is ever opened.
 */
import { lstat, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { IgnoreRules } from './rules.ts'

export interface ContextEntry {
  /** Context-relative, `/`-separated. */
  path: string
  type: 'file' | 'directory' | 'symlink'
  /** Bytes, for files; 0 otherwise. */
  size: number
  /** Permission bits (with setuid, setgid, sticky). */
  mode: number
}

export interface WalkOptions {
  /** Walk only below this context-relative dir (not listed itself). Default: the whole context. */
  under?: string
  signal?: AbortSignal
}

export async function * walkContext (root: string, rules: IgnoreRules, options: WalkOptions = {}): AsyncGenerator<ContextEntry> {
  yield * walkDir(root, options.under ?? '', rules, options.signal)
}

export async function listContext (root: string, rules: IgnoreRules, options: WalkOptions = {}): Promise<ContextEntry[]> {
  const out: ContextEntry[] = []
  for await (const e of walkContext(root, rules, options)) out.push(e)
  return out
}

/**
 * Whether a build sees this existing context-relative path: it is not
 * excluded, or it is a dir with something seen inside.
 */
export async function isVisible (root: string, path: string, rules: IgnoreRules, signal?: AbortSignal): Promise<boolean> {
  if (path === '' || !rules.excludes(path)) return true
  if (!(await lstat(join(root, path))).isDirectory() || !rules.mayIncludeUnder(path)) return false
  for await (const _ of walkDir(root, path, rules, signal)) return true
  return false
}

async function * walkDir (root: string, rel: string, rules: IgnoreRules, signal?: AbortSignal): AsyncGenerator<ContextEntry> {
  signal?.throwIfAborted()
  const names = (await readdir(join(root, rel))).sort()
  for (const name of names) {
    const path = rel === '' ? name : `${rel}/${name}`
    const st = await lstat(join(root, path))
    const excluded = rules.excludes(path)
    const mode = st.mode & 0o7777
    if (st.isDirectory()) {
      const entry: ContextEntry = { path, type: 'directory', size: 0, mode }
      if (!excluded) {
        yield entry
        yield * walkDir(root, path, rules, signal)
      } else if (rules.mayIncludeUnder(path)) {
        let first = true
        for await (const inner of walkDir(root, path, rules, signal)) {
          if (first) { yield entry; first = false }
          yield inner
        }
      }
    } else if (!excluded && st.isFile()) {
      yield { path, type: 'file', size: st.size, mode }
    } else if (!excluded && st.isSymbolicLink()) {
      yield { path, type: 'symlink', size: 0, mode }
    }
  }
}
