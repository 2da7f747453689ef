/**
 * A ContentStore on a local filesystem, laid out like an OCI image layout:
 *
 *   <root>/oci-layout                 {"imageLayoutVersion": "1.0.0"}
 *   <root>/blobs/sha256/<hex>         complete, verified blobs (read-only files)
 *   <root>/ingest/<pid>-<random>      streaming ingests in progress
 *   <root>/partial/<hex>.data|.json   ranged ingests (resumable) and their written ranges
 *
 * A blob appears under blobs/ only by an atomic rename of a file that was
 * hashed, size-checked and fsynced, so a reader never sees a partial or wrong
 * blob, whatever happens to the writer. Temp files of dead processes are
 * removed when a store is opened.
 *
 * Everything is private to the owner (dirs 0700, files 0600, blobs 0400)
 * whatever the umask: the store holds images that the gateway may refuse to
 * other users (docs/security.md).
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, readdir, readFile, rename, rm, stat, unlink, writeFile, chmod } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { BlobInfo, ContentStore, ExpectedBlob, IngestOptions, PartialBlob, ReadOptions } from './index.ts'
import { digestHex, isDigest, parseDigest } from './digest.ts'
import type { Digest } from './digest.ts'
import { DigestMismatchError, InvalidRangeError, NotFoundError, SizeMismatchError } from './errors.ts'
import { PrefixHasher } from './prefix-hasher.ts'
import { BLOB_FILE_MODE, mkdirPrivate, PRIVATE_FILE_MODE } from '../util/fs.ts'

export interface FsContentStoreInit {
  /** Directory of the store; created if missing. */
  root: string
  /** Read chunk size for streams; default 1 MiB. */
  chunkSize?: number
}

/** Default cap for readBytes: manifests and configs are small. */
export const DEFAULT_MAX_READ_BYTES = 16 * 1024 * 1024
/** During a large ingest, flush to disk every this many bytes so the final fsync is short. */
const FLUSH_EVERY = 64 * 1024 * 1024

function isErrno (err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code
}

function processAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return isErrno(err, 'EPERM')
  }
}

async function fsyncDir (dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try { await fh.sync() } finally { await fh.close() }
}

/** Merges [start, end) ranges into a sorted, non-overlapping list. */
export function mergeRanges (ranges: Array<[number, number]>): Array<[number, number]> {
  const sorted = ranges.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0])
  const out: Array<[number, number]> = []
  for (const [a, b] of sorted) {
    const last = out[out.length - 1]
    if (last !== undefined && a <= last[1]) last[1] = Math.max(last[1], b)
    else out.push([a, b])
  }
  return out
}

async function * toChunks (source: Uint8Array | AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  if (source instanceof Uint8Array) yield source
  else yield * source
}

/** Reads [start, end) of a file into `buffer` again and again, yielding a view of each fill (ReadOptions.buffer). */
async function * readInto (path: string, start: number, end: number, buffer: Uint8Array, signal?: AbortSignal): AsyncIterable<Uint8Array> {
  const fh = await open(path, 'r')
  try {
    for (let at = start; at < end;) {
      signal?.throwIfAborted()
      const { bytesRead } = await fh.read(buffer, 0, Math.min(buffer.byteLength, end - at), at)
      if (bytesRead === 0) throw new InvalidRangeError(`${path} ended at ${at}, before ${end}`)
      at += bytesRead
      yield buffer.subarray(0, bytesRead)
    }
  } finally {
    await fh.close()
  }
}

export async function createFsContentStore (init: FsContentStoreInit): Promise<ContentStore> {
  const root = init.root
  const chunkSize = init.chunkSize ?? 1024 * 1024
  const blobsDir = join(root, 'blobs', 'sha256')
  const ingestDir = join(root, 'ingest')
  const partialDir = join(root, 'partial')
  await mkdirPrivate(blobsDir)
  await mkdirPrivate(ingestDir)
  await mkdirPrivate(partialDir)
  await writeFile(join(root, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}', { flag: 'wx', mode: PRIVATE_FILE_MODE }).catch((err: unknown) => {
    if (!isErrno(err, 'EEXIST')) throw err
  })

  // Temp files of processes that died mid-ingest are garbage: nobody can finish them.
  for (const name of await readdir(ingestDir)) {
    const pid = Number(name.split('-')[0])
    if (!Number.isInteger(pid) || !processAlive(pid)) await rm(join(ingestDir, name), { force: true })
  }

  const blobPath = (digest: Digest): string => join(blobsDir, digestHex(parseDigest(digest)))

  const info = async (digest: Digest): Promise<BlobInfo> => {
    try {
      const st = await stat(blobPath(digest))
      return { digest, size: st.size }
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new NotFoundError(`blob ${digest} not found`)
      throw err
    }
  }

  const has = async (digest: Digest): Promise<boolean> => {
    try {
      await stat(blobPath(digest))
      return true
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false
      throw err
    }
  }

  const resolveRange = (size: number, options: ReadOptions): { start: number, end: number } => {
    const start = options.offset ?? 0
    const length = options.length ?? size - start
    if (!Number.isSafeInteger(start) || start < 0 || !Number.isSafeInteger(length) || length < 0 || start + length > size) {
      throw new InvalidRangeError(`range offset=${start} length=${length} is outside a blob of ${size} bytes`)
    }
    return { start, end: start + length }
  }

  async function * read (digest: Digest, options: ReadOptions = {}): AsyncIterable<Uint8Array> {
    const { size } = await info(digest)
    const { start, end } = resolveRange(size, options)
    if (end === start) return
    if (options.buffer !== undefined && options.buffer.byteLength > 0) {
      yield * readInto(blobPath(digest), start, end, options.buffer, options.signal)
      return
    }
    const stream = createReadStream(blobPath(digest), { start, end: end - 1, highWaterMark: chunkSize, signal: options.signal })
    for await (const chunk of stream) yield chunk as Buffer
  }

  const readBytes = async (digest: Digest, maxSize = DEFAULT_MAX_READ_BYTES): Promise<Uint8Array> => {
    const { size } = await info(digest)
    if (size > maxSize) throw new SizeMismatchError(maxSize, size, `blob ${digest} is larger than the ${maxSize}-byte limit for this read`)
    return await readFile(blobPath(digest))
  }

  const path = async (digest: Digest): Promise<string> => {
    await info(digest)
    return blobPath(digest)
  }

  /** Moves a verified, fsynced temp file into place and makes it durable. */
  const publish = async (tmp: string, digest: Digest): Promise<void> => {
    await chmod(tmp, BLOB_FILE_MODE)
    await rename(tmp, blobPath(digest))
    await fsyncDir(blobsDir)
  }

  const ingest = async (source: Uint8Array | AsyncIterable<Uint8Array>, expected: ExpectedBlob = {}, options: IngestOptions = {}): Promise<BlobInfo> => {
    if (expected.digest !== undefined) parseDigest(expected.digest)
    const tmp = join(ingestDir, `${process.pid}-${randomBytes(8).toString('hex')}`)
    const hash = createHash('sha256')
    let written = 0
    let sinceFlush = 0
    let fh: FileHandle | undefined = await open(tmp, 'wx', PRIVATE_FILE_MODE)
    let flushing: Promise<void> | undefined
    try {
      for await (const chunk of toChunks(source)) {
        options.signal?.throwIfAborted()
        written += chunk.byteLength
        if (expected.size !== undefined && written > expected.size) {
          throw new SizeMismatchError(expected.size, written, 'more bytes than expected')
        }
        hash.update(chunk)
        await fh.write(chunk)
        sinceFlush += chunk.byteLength
        if (sinceFlush >= FLUSH_EVERY) {
          // Start writeback early, without waiting, so the final fsync is short.
          sinceFlush = 0
          await flushing
          flushing = fh.datasync()
        }
        options.onProgress?.(written)
      }
      if (expected.size !== undefined && written !== expected.size) throw new SizeMismatchError(expected.size, written)
      const digest: Digest = `sha256:${hash.digest('hex')}`
      if (expected.digest !== undefined && expected.digest !== digest) throw new DigestMismatchError(expected.digest, digest)
      await flushing
      await fh.sync()
      await fh.close()
      fh = undefined
      if (await has(digest)) {
        await unlink(tmp)
      } else {
        await publish(tmp, digest)
      }
      return { digest, size: written }
    } catch (err) {
      await flushing?.catch(() => {})
      await fh?.close().catch(() => {})
      await rm(tmp, { force: true })
      throw err
    }
  }

  const ingestFile = async (file: string, expected: ExpectedBlob = {}, options: IngestOptions = {}): Promise<BlobInfo> => {
    if (expected.digest !== undefined) parseDigest(expected.digest)
    const { size } = await stat(file)
    if (expected.size !== undefined && size !== expected.size) throw new SizeMismatchError(expected.size, size)
    options.signal?.throwIfAborted()
    const digest: Digest = `sha256:${await new PrefixHasher(file, size, size).digest(size)}`
    if (expected.digest !== undefined && expected.digest !== digest) throw new DigestMismatchError(expected.digest, digest)
    if (await has(digest)) {
      await unlink(file)
      return { digest, size }
    }
    const fh = await open(file, 'r')
    try { await fh.sync() } finally { await fh.close() }
    try {
      await publish(file, digest)
    } catch (err) {
      if (!isErrno(err, 'EXDEV')) throw err
      const info = await ingest(createReadStream(file), { digest, size }, options)
      await unlink(file)
      return info
    }
    options.onProgress?.(size)
    return { digest, size }
  }

  const openPartial = async (digest: Digest, size: number): Promise<PartialBlob> => {
    parseDigest(digest)
    if (!Number.isSafeInteger(size) || size < 0) throw new SizeMismatchError(size, size, 'invalid expected size')
    const dataPath = join(partialDir, `${digestHex(digest)}.data`)
    const metaPath = join(partialDir, `${digestHex(digest)}.json`)
    let ranges: Array<[number, number]> = []
    try {
      const meta = JSON.parse(await readFile(metaPath, 'utf8')) as { size?: unknown, ranges?: unknown }
      if (meta.size === size && Array.isArray(meta.ranges)) {
        ranges = mergeRanges((meta.ranges as unknown[]).filter((r): r is [number, number] =>
          Array.isArray(r) && r.length === 2 && Number.isSafeInteger(r[0]) && Number.isSafeInteger(r[1]) && r[0] >= 0 && r[1] <= size))
      }
    } catch { /* no usable record: start from nothing */ }
    let fh: FileHandle | undefined = await open(dataPath, ranges.length > 0 ? 'r+' : 'w+', PRIVATE_FILE_MODE).catch(async () => await open(dataPath, 'w+', PRIVATE_FILE_MODE))
    if (ranges.length === 0) await fh.truncate(0)
    let dirty = false
    let syncing: Promise<void> | undefined
    const prefixEnd = (): number => ranges[0]?.[0] === 0 ? ranges[0][1] : 0
    // Hashes the file on a worker as the prefix grows (a resumed one from what it holds); spent by a commit.
    let hasher: PrefixHasher | undefined = new PrefixHasher(dataPath, size, prefixEnd())

    const handle = (): FileHandle => {
      if (fh === undefined) throw new Error(`partial blob ${digest} is closed`)
      return fh
    }
    const writeMeta = async (durable: Array<[number, number]>): Promise<void> => {
      const tmp = `${metaPath}.${process.pid}.tmp`
      await writeFile(tmp, JSON.stringify({ digest, size, ranges: durable }), { mode: PRIVATE_FILE_MODE })
      await rename(tmp, metaPath)
    }
    // One sync at a time (they share the meta temp file). The record names only the ranges written
    // before the datasync began: writes landing during it are not known to be durable yet.
    const syncOnce = async (): Promise<void> => {
      const durable = ranges
      dirty = false
      try {
        await handle().datasync()
        await writeMeta(durable)
      } catch (err) {
        dirty = true
        throw err
      }
    }
    const sync = async (): Promise<void> => {
      while (syncing !== undefined) await syncing.catch(() => {})
      if (!dirty) return
      syncing = syncOnce()
      try { await syncing } finally { syncing = undefined }
    }
    const discard = async (): Promise<void> => {
      hasher?.close()
      hasher = undefined
      await fh?.close().catch(() => {})
      fh = undefined
      await rm(dataPath, { force: true })
      await rm(metaPath, { force: true })
    }

    return {
      digest,
      size,
      written: () => ranges.map(([a, b]) => [a, b] as [number, number]),
      writeAt: async (offset, data) => {
        if (!Number.isSafeInteger(offset) || offset < 0 || offset + data.byteLength > size) {
          throw new InvalidRangeError(`write of ${data.byteLength} bytes at ${offset} is outside a blob of ${size} bytes`)
        }
        let done = 0
        try {
          while (done < data.byteLength) {
            const { bytesWritten } = await handle().write(data, done, data.byteLength - done, offset + done)
            done += bytesWritten
          }
          ranges = mergeRanges([...ranges, [offset, offset + data.byteLength]])
          dirty = true
        } finally {
          // Also after a failed write: its bytes may have changed what the hasher already read.
          hasher?.wrote(offset, prefixEnd())
        }
      },
      readAt: async (offset, length, into) => {
        if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
          throw new InvalidRangeError(`read of ${length} bytes at ${offset} is outside a blob of ${size} bytes`)
        }
        const out = into !== undefined && into.byteLength >= length ? Buffer.from(into.buffer, into.byteOffset, length) : Buffer.allocUnsafe(length)
        let done = 0
        while (done < length) {
          const { bytesRead } = await handle().read(out, done, length - done, offset + done)
          if (bytesRead === 0) { out.fill(0, done); break }
          done += bytesRead
        }
        return out
      },
      sync,
      commit: async (options = {}) => {
        const first = ranges[0]
        const complete = size === 0 || (ranges.length === 1 && first !== undefined && first[0] === 0 && first[1] === size)
        if (!complete) {
          const have = ranges.reduce((n, [a, b]) => n + b - a, 0)
          throw new SizeMismatchError(size, have, `partial blob ${digest} is incomplete`)
        }
        const h = handle()
        while (syncing !== undefined) await syncing.catch(() => {})
        // The hasher has read what was written as it arrived: usually only the last chunks are left.
        const spent = hasher ?? new PrefixHasher(dataPath, size, size)
        hasher = undefined
        const [, hex] = await Promise.all([h.sync(), spent.digest(size)])
        const actual: Digest = `sha256:${hex}`
        if (actual !== digest) {
          if (options.keepOnMismatch !== true) await discard()
          throw new DigestMismatchError(digest, actual)
        }
        await h.close()
        fh = undefined
        await publish(dataPath, digest)
        await rm(metaPath, { force: true })
        return { digest, size }
      },
      abort: discard,
      close: async () => {
        if (fh === undefined) return
        hasher?.close()
        hasher = undefined
        await sync()
        await fh.close()
        fh = undefined
      }
    }
  }

  const del = async (digest: Digest): Promise<boolean> => {
    try {
      await unlink(blobPath(digest))
      return true
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false
      throw err
    }
  }

  async function * walk (): AsyncIterable<BlobInfo> {
    for (const name of await readdir(blobsDir)) {
      const digest = `sha256:${name}`
      if (!isDigest(digest)) continue
      try {
        const st = await stat(join(blobsDir, name))
        yield { digest, size: st.size }
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err
      }
    }
  }

  return { info, has, read, readBytes, path, ingest, ingestFile, openPartial, delete: del, walk }
}
