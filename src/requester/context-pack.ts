/**
 * Packs a build context as a deterministic tar: entries sorted by path,
 * times clamped to 0, owners 0:0 with no names, permissions kept, only
 * regular files, directories and symlinks. The same tree gives the same
 * bytes, so the same digest, on any machine. `.dockerignore` is honoured.
 */
import { lstat, readFile, readdir, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { pack } from 'tar-stream'
import type { Pack } from 'tar-stream'
import { parseDockerignore } from './dockerignore.ts'
import type { IgnoreMatcher } from './dockerignore.ts'

export interface PackOptions {
  /** Patterns to use instead of reading `<dir>/.dockerignore`. */
  ignore?: string
  signal?: AbortSignal
}

export interface PackedEntry { path: string, type: 'file' | 'directory' | 'symlink', size: number }

/** Context-relative paths to pack, sorted, after .dockerignore. */
export async function listContext (dir: string, options: PackOptions = {}): Promise<PackedEntry[]> {
  let text = options.ignore
  if (text === undefined) {
    try { text = await readFile(join(dir, '.dockerignore'), 'utf8') } catch { text = '' }
  }
  const matcher = parseDockerignore(text)
  const out: PackedEntry[] = []
  await walk(dir, '', matcher, out, options.signal)
  return out
}

async function walk (root: string, rel: string, matcher: IgnoreMatcher, out: PackedEntry[], signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted()
  const names = (await readdir(join(root, rel))).sort()
  for (const name of names) {
    const path = rel === '' ? name : `${rel}/${name}`
    const st = await lstat(join(root, path))
    const ignored = matcher.ignores(path)
    if (st.isDirectory()) {
      if (!ignored) out.push({ path, type: 'directory', size: 0 })
      if (!ignored || matcher.hasExceptions) await walk(root, path, matcher, out, signal)
    } else if (ignored) continue
    else if (st.isFile()) out.push({ path, type: 'file', size: st.size })
    else if (st.isSymbolicLink()) out.push({ path, type: 'symlink', size: 0 })
  }
}

/** Streams the context tar. */
export async function * packContext (dir: string, options: PackOptions = {}): AsyncIterable<Uint8Array> {
  const entries = await listContext(dir, options)
  const tar: Pack = pack()
  const feed = (async () => {
    for (const e of entries) {
      options.signal?.throwIfAborted()
      const full = join(dir, e.path)
      const st = await lstat(full)
      const header = { name: e.path, mode: st.mode & 0o7777, mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' }
      if (e.type === 'directory') tar.entry({ ...header, type: 'directory' })
      else if (e.type === 'symlink') tar.entry({ ...header, type: 'symlink', linkname: await readlink(full) })
      else {
        // Read whole files: contexts are sources and small assets; the tar
        // stream applies backpressure between entries.
        const data = await readFile(full)
        await new Promise<void>((resolve, reject) => { tar.entry({ ...header, type: 'file', size: data.byteLength }, data, err => { if (err != null) reject(err); else resolve() }) })
      }
    }
    tar.finalize()
  })()
  feed.catch(err => { tar.destroy(err as Error) })
  for await (const chunk of tar as AsyncIterable<Buffer>) yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  await feed
}
