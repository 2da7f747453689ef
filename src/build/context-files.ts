/**
 * COPY sources from the build context: glob expansion, refusal of anything
 * that resolves outside the context (`..`, absolute paths, symlinks that
 * leave it), and content hashes for the step cache key.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { glob, lstat, readdir, readlink, realpath } from 'node:fs/promises'
import { isAbsolute, join, relative, sep } from 'node:path'
import { CopySourceError } from './errors.ts'
import type { SourceLoc } from '../recipe/ir.ts'

function inside (root: string, path: string): boolean {
  const rel = relative(root, path)
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))
}

/** Expands one source pattern to real paths inside root; throws CopySourceError when it escapes or matches nothing. */
export async function expandSource (root: string, pattern: string, source?: SourceLoc): Promise<string[]> {
  const realRoot = await realpath(root)
  const clean = pattern.replace(/^\/+/, '')
  if (clean.split('/').includes('..') && !inside(realRoot, join(realRoot, clean))) {
    throw new CopySourceError(`COPY source ${pattern} is outside the build context`, source)
  }
  const matches: string[] = []
  if (/[*?[]/.test(clean)) {
    for await (const p of glob(clean, { cwd: realRoot })) matches.push(join(realRoot, p))
    matches.sort()
  } else matches.push(join(realRoot, clean))
  if (matches.length === 0) throw new CopySourceError(`COPY source ${pattern} matches nothing in the build context`, source)
  const out: string[] = []
  for (const m of matches) {
    let real: string
    try { real = await realpath(m) } catch { throw new CopySourceError(`COPY source ${pattern} not found in the build context`, source) }
    if (!inside(realRoot, real)) throw new CopySourceError(`COPY source ${pattern} is outside the build context (resolves to ${real})`, source)
    out.push(m)
  }
  return out
}

async function fileHash (path: string): Promise<string> {
  const h = createHash('sha256')
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer)
  return h.digest('hex')
}

/** A stable digest of a file or tree: relative paths, kinds, modes, link targets and contents. */
export async function treeDigest (path: string): Promise<string> {
  const h = createHash('sha256')
  const walk = async (p: string, rel: string): Promise<void> => {
    const st = await lstat(p)
    const mode = (st.mode & 0o7777).toString(8)
    if (st.isDirectory()) {
      h.update(`d ${rel} ${mode}\n`)
      for (const name of (await readdir(p)).sort()) await walk(join(p, name), rel === '' ? name : `${rel}${sep}${name}`)
    } else if (st.isSymbolicLink()) {
      h.update(`l ${rel} ${await readlink(p)}\n`)
    } else if (st.isFile()) {
      h.update(`f ${rel} ${mode} ${await fileHash(p)}\n`)
    }
  }
  await walk(path, '')
  return h.digest('hex')
}
