/**
 * Reading a range of a blob from one peer as fast as the path allows: the
 * range is split into chunks, and `streams` blob sessions (each a direct
 * channel, or a stream on one connection) pull chunks in turn. Nothing is verified
 * here: the caller owns the bytes (the fetcher hashes and stores them, a
 * benchmark discards them).
 */
import type { PeerId } from '@libp2p/interface'
import type { Digest } from '../content/index.ts'
import type { KilnNode } from '../p2p/index.ts'
import { BlobSession } from './blob-client.ts'
import { DEFAULT_CHUNK_SIZE, DEFAULT_PER_PEER_CONCURRENCY } from './constants.ts'

export interface ReadRangesOptions {
  chunkSize?: number
  /** Sessions (streams) in flight; default DEFAULT_PER_PEER_CONCURRENCY. */
  streams?: number
  /** Direct channels when the peer takes them (BlobSessionOptions.direct); default true. */
  direct?: boolean
  signal?: AbortSignal
}

/**
 * Calls onChunk(offset, bytes) for every chunk of [offset, offset + length),
 * in completion order. `bytes` is a view of a buffer reused for the next
 * chunk once onChunk (or the promise it returns) is done: copy what you keep.
 */
export async function readBlobRanges (
  node: KilnNode, peer: PeerId, digest: Digest, range: { offset: number, length: number },
  onChunk: (offset: number, bytes: Uint8Array) => void | Promise<void>, options: ReadRangesOptions = {}
): Promise<void> {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE
  const signal = options.signal ?? new AbortController().signal
  const end = range.offset + range.length
  let next = range.offset
  const worker = async (): Promise<void> => {
    const session = new BlobSession(node, peer, { direct: options.direct })
    // One buffer per stream, reused for every range: onChunk must be done with it when it returns.
    const buffer = Buffer.allocUnsafeSlow(chunkSize)
    try {
      while (next < end) {
        const offset = next
        const length = Math.min(chunkSize, end - offset)
        next += length
        const { bytes } = await session.read(digest, offset, length, signal, undefined, buffer)
        await onChunk(offset, bytes)
      }
    } finally {
      await session.close()
    }
  }
  await Promise.all(Array.from({ length: options.streams ?? DEFAULT_PER_PEER_CONCURRENCY }, worker))
}
