/**
 * Safe streaming extraction of a layer (tar, gzip or zstd, detected from the
 * magic bytes) into a directory, on top of earlier layers.
 *
 * Policy, for a rootless extractor fed by untrusted peers:
 * - Paths: a leading `/` is dropped (the root is the container's `/`); `..`
 *   is applied lexically and refused (UnsafePathError) when it climbs out.
 * - Symlinks are never followed out of the root: the directories on an
 *   entry's path are resolved by the in-root resolver (./in-root.ts), so a
 *   link on the way, absolute or relative, leads only to a place inside the
 *   root (`..` stops at the root, as RESOLVE_IN_ROOT); a link loop is
 *   refused (SymlinkEscapeError); the last component is replaced, never
 *   written through (O_EXCL | O_NOFOLLOW).
 * - Hardlinks must name an existing regular file inside the root
 *   (HardlinkTargetError otherwise).
 * - Device nodes and fifos are skipped with a warning: an unprivileged user
 *   cannot mknod, and a rootfs needs none (the sandbox binds /dev).
 * - setuid/setgid bits are stripped unless `keepSetuid`; owners are not
 *   applied: every file belongs to the extracting user.
 * - Whiteouts: `.wh.NAME` deletes NAME from earlier layers, `.wh..wh..opq`
 *   empties its directory of earlier layers' content.
 * - PAX / long-name records and paths over the limits in constants.ts are
 *   refused (TarHeaderTooLargeError); a truncated or corrupt stream is an
 *   error (TarInvalidError, LayerCompressionError).
 * These hold whoever runs it, root included. Small files are written with
 * synchronous calls (the same flags, one thread-pool round trip fewer per
 * call), yielding to the event loop every SYNC_SLICE_MS; see SafeRoot for
 * the resolved-directory memory and when it is dropped. On an error, what was already
 * extracted stays: extract into a fresh directory and discard it on failure.
 */
import { createHash } from 'node:crypto'
import { closeSync, constants as fsc, fchmodSync, futimesSync, lstatSync, openSync, unlinkSync, writeSync } from 'node:fs'
import { link, lstat, lutimes, mkdir, open, readdir, realpath, rm, symlink, unlink } from 'node:fs/promises'
import type { Digest } from '../../content/index.ts'
import { COPY_CHUNK_SIZE } from '../constants.ts'
import { HardlinkTargetError, UnsafePathError } from '../errors.ts'
import type { LayerCompression } from '../media-types.ts'
import { decompressDetected } from './compression.ts'
import { SafeRoot, cleanComponents } from './safe-root.ts'
import type { TarHeader } from './tar-header.ts'
import { readTar } from './tar-reader.ts'

export const WHITEOUT_PREFIX = '.wh.'
export const OPAQUE_WHITEOUT = '.wh..wh..opq'

export interface ExtractWarning {
  entry: string
  message: string
}

export interface ExtractOptions {
  /** Keep setuid/setgid bits; default false (stripped). */
  keepSetuid?: boolean
  /** Called for entries that are skipped (device nodes, fifos). */
  onWarning?: (warning: ExtractWarning) => void
  /** Called with every entry's header as it is read, before it is applied (a reader that wants the headers needs no pass of its own). */
  onHeader?: (header: TarHeader) => void
  signal?: AbortSignal
}

export interface ExtractResult {
  compression: LayerCompression
  /** sha256 of the uncompressed tar: compare with the config's rootfs.diff_ids. */
  diffId: Digest
  /** Entries applied (files, dirs, links, whiteouts). */
  entries: number
  /** Entries skipped by policy (devices, fifos). */
  skipped: number
}

/** Files up to this size are gathered in memory and written with synchronous calls. */
const SMALL_FILE_SIZE = 256 * 1024
/** Longest run of synchronous calls before the extractor yields to the event loop. */
const SYNC_SLICE_MS = 5

const FILE_FLAGS = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW
const DIR_FLAGS = fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW

interface DeferredDir { comps: string[], mode: number, mtime: number }

class Extractor {
  private readonly root: SafeRoot
  private readonly options: ExtractOptions
  /** Real paths (relative, `/`-joined) this layer wrote, and their ancestors. */
  private readonly written = new Set<string>()
  private readonly ancestors = new Set<string>()
  private readonly deferred: DeferredDir[] = []
  entries = 0
  skipped = 0
  private sliceStart = performance.now()

  constructor (root: SafeRoot, options: ExtractOptions) {
    this.root = root
    this.options = options
  }

  private mark (comps: readonly string[]): void {
    this.written.add(comps.join('/'))
    for (let i = 1; i < comps.length; i++) this.ancestors.add(comps.slice(0, i).join('/'))
  }

  private modeOf (h: TarHeader): number {
    return h.mode & (this.options.keepSetuid === true ? 0o7777 : 0o1777)
  }

  async apply (h: TarHeader, body: AsyncIterable<Uint8Array>): Promise<void> {
    const comps = cleanComponents(h.name)
    if (comps.length === 0) {
      if (h.type === 'directory') return
      throw new UnsafePathError(h.name, 'entry names the root itself')
    }
    const base = comps[comps.length - 1] as string
    if (base.startsWith(WHITEOUT_PREFIX)) return await this.whiteout(h, comps.slice(0, -1), base)
    if (h.type === 'char' || h.type === 'block' || h.type === 'fifo') {
      this.skipped++
      this.options.onWarning?.({ entry: h.name, message: `skipped ${h.type === 'fifo' ? 'fifo' : 'device node'}: rootless extraction cannot create it` })
      return
    }
    const parent = await this.root.resolveDir(comps.slice(0, -1), h.name, true) as string[]
    const real = [...parent, base]
    const full = this.root.path(real)
    switch (h.type) {
      case 'directory': await this.directory(h, real, full); break
      case 'file': await this.file(h, full, body); break
      case 'symlink':
        await this.clear(full, false)
        await symlink(h.linkname, full)
        this.root.forget()
        await lutimes(full, h.mtime, h.mtime)
        break
      case 'hardlink': await this.hardlink(h, full); break
    }
    this.mark(real)
    this.entries++
  }

  /** Removes what is at `full` (not following links); keeps an existing directory when `keepDir`. */
  private async clear (full: string, keepDir: boolean): Promise<boolean> {
    let st
    try { st = await lstat(full) } catch { return false }
    if (st.isDirectory()) {
      if (keepDir) return true
      await rm(full, { recursive: true, force: true })
    } else {
      await unlink(full)
    }
    this.root.forget()
    return false
  }

  /** clear() for a path where a file goes, with synchronous calls; false when a directory is in the way (left for clear()). */
  private clearSync (full: string): boolean {
    const st = lstatSync(full, { throwIfNoEntry: false })
    if (st === undefined) return true
    if (st.isDirectory()) return false
    unlinkSync(full)
    this.root.forget()
    return true
  }

  /** Yields to the event loop once synchronous calls have held it SYNC_SLICE_MS. */
  private async breathe (): Promise<void> {
    if (performance.now() - this.sliceStart < SYNC_SLICE_MS) return
    await new Promise(resolve => setImmediate(resolve))
    this.sliceStart = performance.now()
  }

  private async directory (h: TarHeader, real: string[], full: string): Promise<void> {
    if (!await this.clear(full, true)) await mkdir(full, { mode: 0o700 })
    this.deferred.push({ comps: real, mode: this.modeOf(h), mtime: h.mtime })
  }

  private async file (h: TarHeader, full: string, body: AsyncIterable<Uint8Array>): Promise<void> {
    if (h.size <= SMALL_FILE_SIZE) return await this.smallFile(h, full, body)
    await this.clear(full, false)
    await this.largeFile(h, full, body)
  }

  private async smallFile (h: TarHeader, full: string, body: AsyncIterable<Uint8Array>): Promise<void> {
    const chunks: Uint8Array[] = []
    for await (const chunk of body) chunks.push(chunk)
    const data = Buffer.concat(chunks)
    if (!this.clearSync(full)) await this.clear(full, false) // a directory in the way: removed recursively, off the main thread
    const fd = openSync(full, FILE_FLAGS, 0o600)
    try {
      for (let off = 0; off < data.byteLength;) off += writeSync(fd, data, off)
      fchmodSync(fd, this.modeOf(h))
      futimesSync(fd, h.mtime, h.mtime)
    } finally {
      closeSync(fd)
    }
    await this.breathe()
  }

  private async largeFile (h: TarHeader, full: string, body: AsyncIterable<Uint8Array>): Promise<void> {
    const fh = await open(full, FILE_FLAGS, 0o600)
    try {
      let batch: Uint8Array[] = []
      let batched = 0
      for await (const chunk of body) {
        batch.push(chunk)
        batched += chunk.byteLength
        if (batched >= COPY_CHUNK_SIZE) {
          await fh.writev(batch)
          batch = []
          batched = 0
        }
      }
      if (batched > 0) await fh.writev(batch)
      await fh.chmod(this.modeOf(h))
      await fh.utimes(h.mtime, h.mtime)
    } finally {
      await fh.close()
    }
  }

  private async hardlink (h: TarHeader, full: string): Promise<void> {
    const fail = (reason: string): HardlinkTargetError => new HardlinkTargetError(h.name, reason)
    const targetComps = cleanComponents(h.linkname, r => fail(`target ${JSON.stringify(h.linkname)}: ${r}`))
    if (targetComps.length === 0) throw fail('target is the root')
    let parent: string[] | undefined
    try {
      parent = await this.root.resolveDir(targetComps.slice(0, -1), h.name, false)
    } catch (err) {
      throw fail(`target ${JSON.stringify(h.linkname)}: ${(err as Error).message}`)
    }
    if (parent === undefined) throw fail(`target ${JSON.stringify(h.linkname)} does not exist`)
    const target = this.root.path([...parent, targetComps[targetComps.length - 1] as string])
    let st
    try { st = await lstat(target) } catch { throw fail(`target ${JSON.stringify(h.linkname)} does not exist`) }
    if (!st.isFile()) throw fail(`target ${JSON.stringify(h.linkname)} is not a regular file`)
    if (target === full) throw fail('links to itself')
    await this.clear(full, false)
    await link(target, full)
  }

  private async whiteout (h: TarHeader, dirComps: string[], base: string): Promise<void> {
    const dir = await this.root.resolveDir(dirComps, h.name, false)
    this.entries++
    if (dir === undefined) return
    this.root.forget()
    if (base === OPAQUE_WHITEOUT) return await this.opaque(dir)
    const name = base.slice(WHITEOUT_PREFIX.length)
    if (name === '' || name === '.' || name === '..') throw new UnsafePathError(h.name, 'whiteout names no file')
    await rm(this.root.path([...dir, name]), { recursive: true, force: true })
  }

  /** Removes everything under dir that this layer did not write. */
  private async opaque (dir: string[]): Promise<void> {
    for (const child of await readdir(this.root.path(dir))) {
      const comps = [...dir, child]
      const key = comps.join('/')
      if (this.ancestors.has(key)) {
        await this.opaque(comps)
      } else if (!this.written.has(key)) {
        await rm(this.root.path(comps), { recursive: true, force: true })
      }
    }
  }

  /** Applies directory modes and mtimes last, deepest first, so read-only dirs did not block their children. */
  async finish (): Promise<void> {
    this.deferred.sort((a, b) => b.comps.length - a.comps.length)
    for (const d of this.deferred) {
      const parent = await this.root.resolveDir(d.comps.slice(0, -1), d.comps.join('/'), false)
      if (parent === undefined) continue
      let fh
      try {
        fh = await open(this.root.path([...parent, d.comps[d.comps.length - 1] as string]), DIR_FLAGS)
      } catch {
        continue // replaced or removed later in the layer
      }
      try {
        await fh.chmod(d.mode)
        await fh.utimes(d.mtime, d.mtime)
      } finally {
        await fh.close()
      }
    }
  }
}

async function * hashing (source: AsyncIterable<Uint8Array>, hash: ReturnType<typeof createHash>): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    hash.update(chunk)
    yield chunk
  }
}

/**
 * Extracts one layer into `target` (an existing directory), applying its
 * whiteouts to what earlier layers left there. Returns the layer's diffID.
 */
export async function extractLayer (source: AsyncIterable<Uint8Array>, target: string, options: ExtractOptions = {}): Promise<ExtractResult> {
  const root = new SafeRoot(await realpath(target))
  const st = await lstat(root.dir)
  if (!st.isDirectory()) throw new UnsafePathError(target, 'extraction target is not a directory')
  const { compression, tar } = await decompressDetected(source)
  const hash = createHash('sha256')
  const extractor = new Extractor(root, options)
  for await (const { header, body } of readTar(hashing(tar, hash))) {
    options.signal?.throwIfAborted()
    options.onHeader?.(header)
    await extractor.apply(header, body)
  }
  await extractor.finish()
  return { compression, diffId: `sha256:${hash.digest('hex')}`, entries: extractor.entries, skipped: extractor.skipped }
}
