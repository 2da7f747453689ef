/**
 * Deterministic layer writing. The same tree gives the same bytes, whoever
 * writes it and whenever:
 * - entries sorted by path (byte order), directories as `path/`;
 * - mtimes clamped to the sourceDateEpoch option, else 0 (every mtime
 *   becomes the epoch); the SOURCE_DATE_EPOCH variable is read by
 *   src/config, and its value reaches here as that option;
 * - owners as the entry says (`uid`/`gid`, default 0:0), empty
 *   uname/gname, permission bits kept, no atime/ctime, no xattrs; ustar
 *   headers, PAX only for what does not fit;
 * - fixed compression parameters (see compression.ts).
 * The diffID (sha256 of the tar) and the blob's digest and size are computed
 * while streaming into the content store; nothing is buffered whole.
 */
import { createHash } from 'node:crypto'
import { closeSync, constants as fsc, fstatSync, openSync, read, readSync } from 'node:fs'
import { lstat, open, readdir, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Digest, Ingester } from '../../content/index.ts'
import { COPY_CHUNK_SIZE } from '../constants.ts'
import { SourceChangedError, UnsafePathError } from '../errors.ts'
import { ociLayerMediaType } from '../media-types.ts'
import type { LayerCompression } from '../media-types.ts'
import type { Descriptor } from '../schemas.ts'
import { compress } from './compression.ts'
import { OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from './extract.ts'
import { cleanComponents } from './safe-root.ts'
import { BLOCK_SIZE, encodeHeader, padding } from './tar-header.ts'
import type { TarHeader } from './tar-header.ts'

/** Numeric owner of an entry in the image; absent means 0 (root). */
export interface EntryOwner { uid?: number, gid?: number }

/** One change in a layer. Paths are relative to the image root (a leading `/` is ignored). */
export type LayerEntry =
  | ({ type: 'file', path: string, mode: number, mtime?: number, content: Uint8Array } & EntryOwner)
  | ({ type: 'file', path: string, mode: number, mtime?: number, source: string } & EntryOwner)
  /** A file's bytes at `offset` of the file `source` (a member of an uncompressed tar), `size` of them. */
  | ({ type: 'file', path: string, mode: number, mtime?: number, source: string, offset: number, size: number } & EntryOwner)
  | ({ type: 'directory', path: string, mode: number, mtime?: number } & EntryOwner)
  | ({ type: 'symlink', path: string, target: string, mtime?: number } & EntryOwner)
  /** A second name for a file written earlier in the same layer (`target` is its path). */
  | ({ type: 'hardlink', path: string, target: string, mode: number, mtime?: number } & EntryOwner)
  /** Deletes `path` of the layers below. */
  | { type: 'whiteout', path: string }
  /** Hides everything the layers below have under the directory `path`. */
  | { type: 'opaque', path: string }

export interface WriteLayerOptions {
  /** Default 'gzip'. */
  compression?: LayerCompression
  /** Seconds; mtimes later than this are clamped to it. Default 0. */
  sourceDateEpoch?: number
  signal?: AbortSignal
  /** Called as the compressed layer is stored, with its bytes so far. */
  onProgress?: (bytes: number) => void
}

export interface WrittenLayer {
  /** The layer blob as stored, with its OCI media type. */
  descriptor: Descriptor
  /** sha256 of the uncompressed tar, for the config's rootfs.diff_ids. */
  diffId: Digest
  /** Bytes of the uncompressed tar. */
  tarSize: number
}

/** The clamp in effect: the option, else 0. */
export function resolveSourceDateEpoch (option?: number): number {
  return option === undefined ? 0 : Math.max(0, Math.floor(option))
}

interface Prepared { name: string, sortKey: Buffer, header: TarHeader, entry: LayerEntry }

function tarName (entry: LayerEntry): string {
  const comps = cleanComponents(entry.path)
  if (comps.length === 0) throw new UnsafePathError(entry.path, 'a layer entry cannot be the root')
  const last = comps.pop() as string
  if (entry.type === 'whiteout') return [...comps, `${WHITEOUT_PREFIX}${last}`].join('/')
  if (entry.type === 'opaque') return [...comps, last, OPAQUE_WHITEOUT].join('/')
  return [...comps, last].join('/')
}

function prepare (entry: LayerEntry, epoch: number): Prepared {
  const name = tarName(entry)
  const mtime = Math.min(Math.max(0, Math.floor('mtime' in entry && entry.mtime !== undefined ? entry.mtime : epoch)), epoch)
  const owner: EntryOwner = entry.type === 'whiteout' || entry.type === 'opaque' ? {} : entry
  const header: TarHeader = { name, type: 'file', mode: 0o644, uid: owner.uid ?? 0, gid: owner.gid ?? 0, size: 0, mtime, linkname: '', uname: '', gname: '', devmajor: 0, devminor: 0 }
  switch (entry.type) {
    case 'file':
      header.mode = entry.mode & 0o7777
      header.size = 'content' in entry ? entry.content.byteLength : 'offset' in entry ? entry.size : -1
      break
    case 'directory':
      header.type = 'directory'
      header.name = `${name}/`
      header.mode = entry.mode & 0o7777
      break
    case 'symlink':
      header.type = 'symlink'
      header.mode = 0o777
      header.linkname = entry.target
      break
    case 'hardlink':
      header.type = 'hardlink'
      header.mode = entry.mode & 0o7777
      header.linkname = cleanComponents(entry.target).join('/')
      break
    case 'whiteout':
    case 'opaque':
      header.mode = 0o644
      break
  }
  return { name, sortKey: Buffer.from(name), header, entry }
}

async function * fileBody (path: string, size: number): AsyncGenerator<Uint8Array> {
  // O_NONBLOCK: a fifo put in the file's place is refused at once rather than waited on.
  const fh = await open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK)
  try {
    if (!(await fh.stat()).isFile()) throw new SourceChangedError(path, 'is no longer a regular file')
    let left = size
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK_SIZE, left))
      const { bytesRead } = await fh.read(buf, 0, buf.length, null)
      if (bytesRead === 0) throw new SourceChangedError(path, `shrank below ${size} bytes`)
      left -= bytesRead
      yield buf.subarray(0, bytesRead)
    }
    const extra = await fh.read(Buffer.alloc(1), 0, 1, null)
    if (extra.bytesRead > 0) throw new SourceChangedError(path, `grew beyond ${size} bytes`)
  } finally {
    await fh.close()
  }
}

/** Files up to this size are read whole with synchronous calls (one open, fstat, read, close). */
const SMALL_FILE_SIZE = 256 * 1024
/** Longest run of synchronous reads before the writer yields to the event loop. */
const SYNC_SLICE_MS = 5

/**
 * A small regular file's bytes, read with synchronous calls; undefined when
 * the file is larger than SMALL_FILE_SIZE (then read as a stream).
 */
function readSmallFile (path: string): Buffer | undefined {
  let fd: number
  try {
    fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new SourceChangedError(path, 'is no longer a regular file')
    throw err
  }
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) throw new SourceChangedError(path, 'is no longer a regular file')
    if (st.size > SMALL_FILE_SIZE) return undefined
    const buf = Buffer.allocUnsafe(st.size + 1)
    let got = 0
    for (let n = -1; n !== 0 && got < buf.length;) {
      n = readSync(fd, buf, got, buf.length - got, null)
      got += n
    }
    if (got > st.size) throw new SourceChangedError(path, `grew beyond ${st.size} bytes`)
    return buf.subarray(0, got)
  } finally {
    closeSync(fd)
  }
}

/**
 * The files that ranged entries read from, each opened once per tar (a
 * layer streamed from an archive reads thousands of members of one file).
 */
class RangeFiles {
  private readonly fds = new Map<string, { fd: number, size: number }>()

  private open (path: string): { fd: number, size: number } {
    let f = this.fds.get(path)
    if (f === undefined) {
      const fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW)
      f = { fd, size: fstatSync(fd).size }
      this.fds.set(path, f)
    }
    return f
  }

  /** `size` bytes at `offset` of `path`, read synchronously (small members). */
  readSync (path: string, offset: number, size: number): Buffer {
    const f = this.open(path)
    if (offset + size > f.size) throw new SourceChangedError(path, `shrank below ${offset + size} bytes`)
    const buf = Buffer.allocUnsafe(size)
    for (let got = 0; got < size;) {
      const n = readSync(f.fd, buf, got, size - got, offset + got)
      if (n === 0) throw new SourceChangedError(path, `shrank below ${offset + size} bytes`)
      got += n
    }
    return buf
  }

  /** The same as a stream, read off the main thread (large members). */
  async * stream (path: string, offset: number, size: number): AsyncGenerator<Uint8Array> {
    const f = this.open(path)
    if (offset + size > f.size) throw new SourceChangedError(path, `shrank below ${offset + size} bytes`)
    for (let pos = offset, left = size; left > 0;) {
      const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK_SIZE, left))
      const { bytesRead } = await readAt(f.fd, buf, 0, buf.length, pos)
      if (bytesRead === 0) throw new SourceChangedError(path, `shrank below ${offset + size} bytes`)
      pos += bytesRead
      left -= bytesRead
      yield buf.subarray(0, bytesRead)
    }
  }

  close (): void {
    for (const { fd } of this.fds.values()) closeSync(fd)
    this.fds.clear()
  }
}

const readAt = promisify(read)

async function * tarStream (entries: Prepared[], signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  const ranges = new RangeFiles()
  try {
    yield * tarEntries(entries, ranges, signal)
  } finally {
    ranges.close()
  }
}

async function * tarEntries (entries: Prepared[], ranges: RangeFiles, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  let sliceStart = performance.now()
  for (const p of entries) {
    signal?.throwIfAborted()
    const e = p.entry
    let small: Buffer | undefined
    if (e.type === 'file' && 'offset' in e) {
      if (e.size <= SMALL_FILE_SIZE) small = ranges.readSync(e.source, e.offset, e.size)
      if (performance.now() - sliceStart >= SYNC_SLICE_MS) {
        await new Promise(resolve => setImmediate(resolve))
        sliceStart = performance.now()
      }
    } else if (e.type === 'file' && 'source' in e) {
      small = readSmallFile(e.source)
      if (small === undefined) {
        const st = await lstat(e.source)
        if (!st.isFile()) throw new SourceChangedError(e.source, 'is no longer a regular file')
        p.header.size = st.size
      } else {
        p.header.size = small.byteLength
      }
      if (performance.now() - sliceStart >= SYNC_SLICE_MS) {
        await new Promise(resolve => setImmediate(resolve))
        sliceStart = performance.now()
      }
    }
    yield encodeHeader(p.header)
    if (e.type !== 'file' || p.header.size === 0) continue
    if ('content' in e) yield e.content
    else if (small !== undefined) yield small
    else if ('offset' in e) yield * ranges.stream(e.source, e.offset, e.size)
    else yield * fileBody(e.source, p.header.size)
    const pad = padding(p.header.size)
    if (pad > 0) yield Buffer.alloc(pad)
  }
  yield Buffer.alloc(2 * BLOCK_SIZE)
}

async function * measure (source: AsyncIterable<Uint8Array>, m: { hash: ReturnType<typeof createHash>, size: number }): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    m.hash.update(chunk)
    m.size += chunk.byteLength
    yield chunk
  }
}

/**
 * In a tar a hardlink must come after the file it names. When a link sorts
 * before its target, the first name of the group in tar order takes the data
 * and every other name becomes a link to it: same files, valid order.
 * Links to files outside the entry list are left as they are.
 */
export function orderHardlinks (entries: readonly LayerEntry[]): LayerEntry[] {
  const key = (path: string): string => cleanComponents(path).join('/')
  const files = new Map<string, LayerEntry & { type: 'file' }>()
  for (const e of entries) if (e.type === 'file') files.set(key(e.path), e)
  const groups = new Map<string, string[]>()
  for (const e of entries) {
    if (e.type !== 'hardlink' || !files.has(key(e.target))) continue
    const t = key(e.target)
    groups.set(t, [...(groups.get(t) ?? [t]), key(e.path)])
  }
  const rename = new Map<string, LayerEntry>()
  for (const [target, names] of groups) {
    const sorted = [...new Set(names)].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    const first = sorted[0] as string
    if (first === target) continue
    const data = files.get(target) as LayerEntry & { type: 'file' }
    rename.set(first, { ...data, path: first })
    const owner = { ...(data.uid === undefined ? {} : { uid: data.uid }), ...(data.gid === undefined ? {} : { gid: data.gid }) }
    for (const other of sorted.slice(1)) rename.set(other, { type: 'hardlink', path: other, target: first, mode: data.mode, ...(data.mtime === undefined ? {} : { mtime: data.mtime }), ...owner })
  }
  if (rename.size === 0) return [...entries]
  return entries.map(e => rename.get(key(e.path)) ?? e)
}

function prepareSorted (entries: readonly LayerEntry[], epoch: number): Prepared[] {
  const prepared = orderHardlinks(entries).map(e => prepare(e, epoch)).sort((a, b) => Buffer.compare(a.sortKey, b.sortKey))
  for (let i = 1; i < prepared.length; i++) {
    if ((prepared[i] as Prepared).name === (prepared[i - 1] as Prepared).name) {
      throw new UnsafePathError((prepared[i] as Prepared).name, 'the same path appears twice in a layer')
    }
  }
  return prepared
}

/**
 * The deterministic tar of a list of entries, uncompressed, as a stream
 * (used for layers and for oci-archive files). Throws UnsafePathError for a
 * path given twice.
 */
export function encodeTar (entries: readonly LayerEntry[], options: Pick<WriteLayerOptions, 'sourceDateEpoch' | 'signal'> = {}): AsyncIterable<Uint8Array> {
  return tarStream(prepareSorted(entries, resolveSourceDateEpoch(options.sourceDateEpoch)), options.signal)
}

/**
 * Writes a layer from an explicit list of changes (the builder's diff) into
 * the store. Duplicate paths are refused: a layer names each path once.
 */
export async function writeLayer (store: Ingester, entries: readonly LayerEntry[], options: WriteLayerOptions = {}): Promise<WrittenLayer> {
  const compression = options.compression ?? 'gzip'
  const tar = { hash: createHash('sha256'), size: 0 }
  const source = encodeTar(entries, options)
  const blob = await store.ingest(compress(measure(source, tar), compression), undefined, { signal: options.signal, ...(options.onProgress !== undefined ? { onProgress: options.onProgress } : {}) })
  return {
    descriptor: { mediaType: ociLayerMediaType(compression), digest: blob.digest, size: blob.size },
    diffId: `sha256:${tar.hash.digest('hex')}`,
    tarSize: tar.size
  }
}

/**
 * Lists a directory tree as layer entries: regular files, directories,
 * symlinks, hardlinks (a file seen again by inode becomes a link to its first
 * path in sorted order). Overlay whiteouts (char device 0/0) become OCI
 * whiteouts; other devices, fifos and sockets are left out.
 */
export async function listTree (dir: string): Promise<LayerEntry[]> {
  const out: LayerEntry[] = []
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(dir, rel))).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    for (const name of names) {
      const path = rel === '' ? name : `${rel}/${name}`
      const full = join(dir, path)
      const st = await lstat(full)
      if (st.isDirectory()) {
        out.push({ type: 'directory', path, mode: st.mode, mtime: Math.floor(st.mtimeMs / 1000) })
        await walk(path)
      } else if (st.isFile()) {
        out.push({ type: 'file', path, mode: st.mode, mtime: Math.floor(st.mtimeMs / 1000), source: full })
      } else if (st.isSymbolicLink()) {
        out.push({ type: 'symlink', path, target: await readlink(full), mtime: Math.floor(st.mtimeMs / 1000) })
      } else if (st.isCharacterDevice() && st.rdev === 0) {
        out.push({ type: 'whiteout', path })
      }
    }
  }
  await walk('')
  // Hardlinks: the first path of an inode in tar order holds the data.
  const sorted = out.map((e, i) => ({ e, i, key: Buffer.from(e.path) })).sort((a, b) => Buffer.compare(a.key, b.key))
  const firstByInode = new Map<string, string>()
  for (const { e, i } of sorted) {
    if (e.type !== 'file' || !('source' in e)) continue
    const st = await lstat(e.source)
    if (st.nlink < 2) continue
    const key = `${st.dev}:${st.ino}`
    const first = firstByInode.get(key)
    if (first === undefined) firstByInode.set(key, e.path)
    else out[i] = { type: 'hardlink', path: e.path, target: first, mode: e.mode, mtime: e.mtime }
  }
  return out
}

/** Writes a layer holding a whole directory tree (a rootfs or a diff) into the store. */
export async function writeLayerFromDir (store: Ingester, dir: string, options: WriteLayerOptions = {}): Promise<WrittenLayer> {
  return await writeLayer(store, await listTree(dir), options)
}
