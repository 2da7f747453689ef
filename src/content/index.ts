/**
 * The content store: blobs named by their sha256 digest.
 *
 * Terms:
 * - blob: a byte string, named by its digest (see ./digest.ts).
 * - ingest: writing a blob. The bytes go to a temp file, are hashed while
 *   written, checked against the expected size and digest, fsynced and renamed
 *   into place. A blob is visible only once complete and verified: a
 *   mismatch, an abort or a crash leaves nothing readable.
 * - partial: an ingest that arrives as ranges in any order (a multi-peer
 *   fetch). Its ranges survive a restart so the fetch resumes from what it has.
 *
 * The store is the sum of narrow interfaces; callers take the least they need.
 *
 * @example
 * ```ts
 * const store = await createFsContentStore({ root: '/data/kiln/store' })
 * const info = await store.ingest(bytes, { digest, size })
 * for await (const chunk of store.read(info.digest, { offset: 0, length: 10 })) { ... }
 * ```
 */
import type { Digest } from './digest.ts'

export * from './digest.ts'
export * from './errors.ts'
export { createFsContentStore } from './fs-store.ts'
export type { FsContentStoreInit } from './fs-store.ts'

export interface BlobInfo {
  digest: Digest
  size: number
}

export interface ReadOptions {
  /** First byte to read; default 0. */
  offset?: number
  /** Bytes to read from offset; default to the end. A range past the end throws InvalidRangeError. */
  length?: number
  signal?: AbortSignal
  /**
   * Read into this memory instead of a fresh buffer per chunk: each chunk
   * yielded is a view of it, valid only until the next one is asked for.
   * A server that has sent (not just queued) each chunk before asking for
   * the next moves a blob without allocating, so the garbage collector has
   * nothing to do. Stores that cannot do this ignore it.
   */
  buffer?: Uint8Array
}

export interface ExpectedBlob {
  /** When given, the ingest fails with DigestMismatchError unless the bytes hash to it. */
  digest?: Digest
  /** When given, the ingest fails with SizeMismatchError as soon as the bytes exceed it, or at the end if short. */
  size?: number
}

export interface IngestOptions {
  signal?: AbortSignal
  /** Called with the number of bytes written so far, at most every chunk. */
  onProgress?: (bytes: number) => void
}

export interface BlobReader {
  /** Size of a blob; throws NotFoundError if absent. */
  info: (digest: Digest) => Promise<BlobInfo>
  has: (digest: Digest) => Promise<boolean>
  /** Streams a blob or a range of it; throws NotFoundError / InvalidRangeError before yielding. */
  read: (digest: Digest, options?: ReadOptions) => AsyncIterable<Uint8Array>
  /** Reads a whole small blob (manifests, configs); throws SizeMismatchError if larger than maxSize. */
  readBytes: (digest: Digest, maxSize?: number) => Promise<Uint8Array>
  /**
   * The file that holds a blob, for zero-copy serving (sendfile) and for
   * tools that need a path. The file must not be written to.
   */
  path: (digest: Digest) => Promise<string>
}

export interface CommitOptions {
  /** Keep a partial whose digest does not match, for readAt(); default false (discarded). */
  keepOnMismatch?: boolean
}

export interface PartialBlob {
  readonly digest: Digest
  readonly size: number
  /** Byte ranges already written and durable, as [start, end) pairs, merged and sorted. */
  written: () => Array<[number, number]>
  /** Writes bytes at an offset. Ranges may overlap; they must lie within size. */
  writeAt: (offset: number, data: Uint8Array) => Promise<void>
  /**
   * Reads back bytes of the partial (what was last written there; unwritten
   * bytes read as zeros). Throws InvalidRangeError outside the blob. With
   * `into` (at least `length` bytes) the bytes land there and the result is
   * a view of it, so a reader that follows the partial reuses its buffers.
   */
  readAt: (offset: number, length: number, into?: Uint8Array) => Promise<Uint8Array>
  /** Flushes data and the range record, so that a resume after a crash keeps them. */
  sync: () => Promise<void>
  /**
   * Verifies the whole blob (every byte written, digest matches) and makes it
   * visible. Throws SizeMismatchError while bytes are missing (the partial
   * stays as it is). On a digest mismatch DigestMismatchError is thrown and
   * the partial is discarded, unless `keepOnMismatch`: then it stays open so
   * that its bytes can be read back (to find which ranges were wrong), and
   * the caller discards it with abort().
   */
  commit: (options?: CommitOptions) => Promise<BlobInfo>
  /** Discards the partial data. */
  abort: () => Promise<void>
  /** Releases the file handle, keeping the partial data for a later resume. */
  close: () => Promise<void>
}

export interface Ingester {
  /**
   * Writes a blob from bytes or a stream. Idempotent: ingesting a blob that
   * is already present verifies the new bytes and returns its info. Safe to
   * call concurrently for the same digest.
   */
  ingest: (source: Uint8Array | AsyncIterable<Uint8Array>, expected?: ExpectedBlob, options?: IngestOptions) => Promise<BlobInfo>
  /** Opens (or resumes) a ranged ingest of a blob whose digest and size are known. */
  openPartial: (digest: Digest, size: number) => Promise<PartialBlob>
}

export interface FileIngester {
  /**
   * Makes a finished file a blob without copying it (an upload received in
   * pieces): hashes the file (one read, off the calling thread when large),
   * checks it against `expected` as ingest does, fsyncs it and renames it
   * into place, so it needs no second copy's worth of free space. The file
   * must be complete and not written to during the call. On success the
   * file is gone (it is now the blob, or was removed because the blob was
   * already there); on failure it is left where it was, for the caller. A
   * file on another filesystem than the store is ingested as a copy, then
   * removed.
   */
  ingestFile: (path: string, expected?: ExpectedBlob, options?: IngestOptions) => Promise<BlobInfo>
}

export interface BlobManager {
  /** Removes a blob; no error if it is absent. Returns whether it was present. */
  delete: (digest: Digest) => Promise<boolean>
  /** Every complete blob, in no particular order. */
  walk: () => AsyncIterable<BlobInfo>
}

export interface ContentStore extends BlobReader, Ingester, FileIngester, BlobManager {}

export { createRefStore } from './refs.ts'
export type { Ref, RefStore, RefTarget } from './refs.ts'
export { openLocalStore, STORE_DIR } from './local-store.ts'
export type { LocalStore } from './local-store.ts'
export { collectGarbage, createLeases, markReachable } from './gc.ts'
export type { GcOptions, GcResult, Leases } from './gc.ts'
export { createBuildLeases, BUILD_LEASE_MS } from './leased-store.ts'
export { verifyStore, contentReferenceTables, SMALL_BLOB_BYTES } from './verify.ts'
export type { ReferenceTable, StoreProblem, VerifyOptions, VerifyReport } from './verify.ts'
export type { BuildLeases } from './leased-store.ts'
