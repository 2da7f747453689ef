/**
 * ADD of a local tar archive: Docker extracts it into the destination
 * directory instead of copying the file. An archive is recognized by its
 * content, not its name: a POSIX/GNU tar (`ustar` magic at offset 257),
 * plain, gzip- or zstd-compressed (what src/oci reads). bzip2 and xz
 * archives and v7 tars without the magic are copied as files. Extraction
 * uses src/oci's safe extractor rooted at the destination, so nothing in
 * the archive can write outside it. Owners are not applied on disk (every
 * file belongs to the node's user) and setuid bits are stripped there; the
 * archive's owners and modes are written into the step's layer instead
 * (./owner-ledger.ts, `tarOwners`, `withArchiveOwners`), as Docker keeps them.
 */
import { createReadStream } from 'node:fs'
import { open } from 'node:fs/promises'
import { gunzipSync, zstdDecompressSync } from 'node:zlib'
import { detectCompression, extractLayer } from '../oci/index.ts'

const TAR_MAGIC_OFFSET = 257
const HEAD_BYTES = 64 * 1024

function hasTarMagic (block: Uint8Array): boolean {
  return Buffer.from(block.subarray(TAR_MAGIC_OFFSET, TAR_MAGIC_OFFSET + 5)).toString('latin1') === 'ustar'
}

/** Decompresses as much of a truncated stream as there is (a sync inflate of a prefix throws once it runs dry). */
function inflatePrefix (head: Buffer, kind: 'gzip' | 'zstd'): Buffer {
  try {
    return kind === 'gzip' ? gunzipSync(head, { finishFlush: 2 /* Z_SYNC_FLUSH */ }) : zstdDecompressSync(head)
  } catch {
    return Buffer.alloc(0)
  }
}

/** Whether the file at path is a tar archive ADD should extract. */
export async function isTarArchive (path: string): Promise<boolean> {
  const fh = await open(path, 'r')
  let head: Buffer
  try {
    const buf = Buffer.alloc(HEAD_BYTES)
    const { bytesRead } = await fh.read(buf, 0, HEAD_BYTES, 0)
    head = buf.subarray(0, bytesRead)
  } finally {
    await fh.close()
  }
  let kind
  try { kind = detectCompression(head) } catch { return false }
  const tar = kind === 'none' ? head : inflatePrefix(head, kind)
  return tar.byteLength >= 512 && hasTarMagic(tar)
}

/** Extracts the archive at path into dir (which exists). */
export async function extractArchive (path: string, dir: string, signal?: AbortSignal): Promise<void> {
  await extractLayer(createReadStream(path), dir, signal === undefined ? {} : { signal })
}
