/**
 * Where a static site's files go: a directory (./site-fs.ts) or an
 * S3-compatible bucket (./s3.ts). Paths are `/`-separated and relative to
 * the site root. Every put replaces the whole object atomically: a reader
 * sees the old bytes or the new ones.
 */
import type { BlobReader, Digest } from '../content/index.ts'

export interface ObjectInfo {
  size: number
}

export interface ObjectStore {
  /** Shown to people: `/srv/site`, `s3://bucket/prefix`. */
  readonly location: string
  /** Size of an object, undefined when absent. */
  stat: (path: string, signal?: AbortSignal) => Promise<ObjectInfo | undefined>
  /** Bytes of a small object (at most maxSize, else it throws), undefined when absent. */
  get: (path: string, maxSize: number, signal?: AbortSignal) => Promise<Uint8Array | undefined>
  put: (path: string, bytes: Uint8Array, contentType: string, signal?: AbortSignal) => Promise<void>
  /** Writes a blob from the content store. */
  putBlob: (path: string, store: BlobReader, blob: { digest: Digest, size: number }, contentType: string, signal?: AbortSignal) => Promise<void>
}
