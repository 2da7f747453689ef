/**
 * COPY sources from the build context: glob expansion, refusal of anything
 * that resolves outside the context (`..`, absolute paths, symlinks that
 * leave it), the context filter (what the ignore file excludes is not
 * there for COPY/ADD, is never read, and is not in the step cache key;
 * src/builder/context), and content hashes for the step cache key.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { glob, lstat, readlink, realpath } from 'node:fs/promises'
import { isAbsolute, join, relative, sep } from 'node:path'
import { isVisible, NO_IGNORE_RULES, walkContext } from './context/index.ts'
import type { ContextEntry, IgnoreRules } from './context/index.ts'
import { CopySourceError } from './errors.ts'
import type { SourceLoc } from '../recipe/ir.ts'

function inside (root: string, path: string): boolean {
  const rel = relative(root, path)
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))
}

/** The context-relative, `/`-separated form of a path inside realRoot. */
function contextPath (realRoot: string, path: string): string {
  return relative(realRoot, path).split(sep).join('/')
}

/**
 * Expands one source pattern to real paths inside root, leaving out what
 * `rules` exclude; throws CopySourceError when it escapes, matches nothing
 * the build may see, or names (or links to) an excluded path.
 */
export async function expandSource (root: string, pattern: string, source?: SourceLoc, rules: IgnoreRules = NO_IGNORE_RULES): Promise<string[]> {
  const realRoot = await realpath(root)
  const clean = pattern.replace(/^\/+/, '')
  if (clean.split('/').includes('..') && !inside(realRoot, join(realRoot, clean))) {
    throw new CopySourceError(`COPY source ${pattern} is outside the build context`, source)
  }
  const excludedBy = rules.file === undefined ? '' : ` (${rules.file} excludes it)`
  const matches: string[] = []
  if (/[*?[]/.test(clean)) {
    for await (const p of glob(clean, { cwd: realRoot })) {
      const full = join(realRoot, p)
      if (await isVisible(realRoot, contextPath(realRoot, full), rules)) matches.push(full)
    }
    matches.sort()
  } else {
    const full = join(realRoot, clean)
    const seen = await isVisible(realRoot, contextPath(realRoot, full), rules).catch(() => true)
    if (!seen) throw new CopySourceError(`COPY source ${pattern} not found in the build context${excludedBy}`, source)
    matches.push(full)
  }
  if (matches.length === 0) throw new CopySourceError(`COPY source ${pattern} matches nothing in the build context${rules.patterns.length > 0 ? ` that ${rules.file ?? 'the ignore file'} leaves in` : ''}`, source)
  const out: string[] = []
  for (const m of matches) {
    let real: string
    try { real = await realpath(m) } catch { throw new CopySourceError(`COPY source ${pattern} not found in the build context`, source) }
    if (!inside(realRoot, real)) throw new CopySourceError(`COPY source ${pattern} is outside the build context (resolves to ${real})`, source)
    // A link to an excluded file would let ADD read it (archives are opened through the link).
    if (!await isVisible(realRoot, contextPath(realRoot, real), rules)) throw new CopySourceError(`COPY source ${pattern} links to ${contextPath(realRoot, real)}, which is not in the build context${excludedBy}`, source)
    out.push(m)
  }
  return out
}

/**
 * The `filter` for fs.cp copying a source that expandSource returned: it
 * skips every excluded entry below it (so nothing excluded is opened), and
 * keeps an excluded dir only for what an exception takes back inside it.
 */
export function contextCopyFilter (root: string, rules: IgnoreRules = NO_IGNORE_RULES): (source: string) => Promise<boolean> {
  let realRoot: Promise<string> | undefined
  return async (source) => {
    if (rules.patterns.length === 0) return true
    realRoot ??= realpath(root)
    const r = await realRoot
    return await isVisible(r, contextPath(r, source), rules)
  }
}

async function fileHash (path: string): Promise<string> {
  const h = createHash('sha256')
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer)
  return h.digest('hex')
}

/**
 * A stable digest of a file or tree: relative paths, kinds, modes, link
 * targets and contents. With contextDir and rules, a tree is what the build
 * sees of it (src/builder/context): excluded entries are neither read nor
 * hashed, so they cannot change the step's cache key.
 */
export async function treeDigest (path: string, contextDir?: string, rules: IgnoreRules = NO_IGNORE_RULES): Promise<string> {
  const h = createHash('sha256')
  const add = async (full: string, rel: string, e: Pick<ContextEntry, 'type' | 'mode'>): Promise<void> => {
    const mode = e.mode.toString(8)
    if (e.type === 'directory') h.update(`d ${rel} ${mode}\n`)
    else if (e.type === 'symlink') h.update(`l ${rel} ${await readlink(full)}\n`)
    else h.update(`f ${rel} ${mode} ${await fileHash(full)}\n`)
  }
  const top = await lstat(path)
  const mode = top.mode & 0o7777
  if (top.isFile()) await add(path, '', { type: 'file', mode })
  else if (top.isSymbolicLink()) await add(path, '', { type: 'symlink', mode })
  else if (top.isDirectory()) {
    await add(path, '', { type: 'directory', mode })
    const root = contextDir === undefined ? path : await realpath(contextDir)
    const under = contextPath(root, path)
    for await (const e of walkContext(root, rules, { under })) {
      const rel = under === '' ? e.path : e.path.slice(under.length + 1)
      await add(join(root, e.path), rel.split('/').join(sep), e)
    }
  }
  return h.digest('hex')
}
