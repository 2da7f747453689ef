/**
 * Where an import reads blobs from: an image layout directory, a member of
 * an archive file, or bytes made in memory (a docker-archive's manifest).
 * Nothing read from a source is trusted: the store verifies every blob
 * against the digest and size that referenced it.
 */
import { createReadStream } from 'node:fs'
import { lstat } from 'node:fs/promises'
import { join } from 'node:path'
import { digestHex } from '../content/index.ts'
import type { Digest } from '../content/index.ts'
import { COPY_CHUNK_SIZE } from './constants.ts'
import { ManifestTooLargeError } from './errors.ts'

export interface BlobLocation {
  size: number
  /** A fresh stream of the blob's bytes each call. */
  open: () => AsyncIterable<Uint8Array>
}

export interface BlobSource {
  /** Where a blob is, or undefined when the source does not have it. */
  locate: (digest: Digest) => Promise<BlobLocation | undefined>
}

/** A byte range of a file (start inclusive, size bytes). */
export function fileRange (path: string, start: number, size: number): BlobLocation {
  return {
    size,
    open: () => size === 0 ? emptyStream() : createReadStream(path, { start, end: start + size - 1, highWaterMark: COPY_CHUNK_SIZE })
  }
}

async function * emptyStream (): AsyncGenerator<Uint8Array> { /* nothing */ }

export function bytesLocation (bytes: Uint8Array): BlobLocation {
  return { size: bytes.byteLength, open: async function * () { yield bytes } }
}

/** Blobs of an OCI image layout directory: `blobs/sha256/<hex>`, regular files only (no symlinks). */
export function layoutBlobSource (dir: string): BlobSource {
  return {
    locate: async digest => {
      const path = join(dir, 'blobs', 'sha256', digestHex(digest))
      try {
        const st = await lstat(path)
        return st.isFile() ? fileRange(path, 0, st.size) : undefined
      } catch {
        return undefined
      }
    }
  }
}

/** Tries sources in order. */
export function chainSources (...sources: BlobSource[]): BlobSource {
  return {
    locate: async digest => {
      for (const s of sources) {
        const loc = await s.locate(digest)
        if (loc !== undefined) return loc
      }
      return undefined
    }
  }
}

export function memorySource (blobs: ReadonlyMap<Digest, Uint8Array>): BlobSource {
  return { locate: async digest => { const b = blobs.get(digest); return b === undefined ? undefined : bytesLocation(b) } }
}

/** Reads a whole small blob; ManifestTooLargeError above max. */
export async function readLocation (loc: BlobLocation, max: number, what: string): Promise<Uint8Array> {
  if (loc.size > max) throw new ManifestTooLargeError(loc.size, max, what)
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const c of loc.open()) {
    size += c.byteLength
    if (size > max) throw new ManifestTooLargeError(size, max, what)
    chunks.push(c)
  }
  return Buffer.concat(chunks)
}
