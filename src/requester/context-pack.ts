/**
 * Packs a build context as a deterministic tar: entries sorted by path,
 * times clamped to 0, owners 0:0 with no names, permissions kept, only
 * regular files, directories and symlinks. The same tree gives the same
 * bytes, so the same digest, on any machine. The entries are those a local
 * `kiln build` of the same dir and recipe would see (src/builder/context:
 * `.dockerignore`, or the recipe's own `<recipe>.dockerignore`), so what is
 * excluded never leaves the machine and the agent builds the tar as it is.
 */
import { readFile, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { pack } from 'tar-stream'
import type { Pack } from 'tar-stream'
import { readContextIgnore, walkContext } from '../builder/context/index.ts'

export interface PackOptions {
  /** The recipe file: its `<name>.dockerignore` beside it wins over `<dir>/.dockerignore`. */
  recipeFile?: string
  signal?: AbortSignal
}

/** Streams the context tar. */
export async function * packContext (dir: string, options: PackOptions = {}): AsyncIterable<Uint8Array> {
  const rules = await readContextIgnore(dir, options)
  const tar: Pack = pack()
  const feed = (async () => {
    for await (const e of walkContext(dir, rules, options.signal !== undefined ? { signal: options.signal } : {})) {
      options.signal?.throwIfAborted()
      const full = join(dir, e.path)
      const header = { name: e.path, mode: e.mode, mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' }
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
