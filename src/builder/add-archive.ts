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
import { WHITEOUT_PREFIX, cleanComponents, detectCompression, extractLayer, readTar } from '../oci/index.ts'
import type { LayerEntry } from '../oci/index.ts'
import { recorded, withArchiveOwners } from './owner-ledger.ts'
import type { LayerOwners } from './owner-ledger.ts'

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

/**
 * The layer entries of an uncompressed tar archive ADD extracts into an
 * empty tree at its root, read from the archive's headers alone (file
 * bodies are ranges of the archive, read when the layer is written): the
 * same entries the extraction's upper dir gives (./snapshotter/diff.ts)
 * with the archive's owners applied (./owner-ledger.ts, `withArchiveOwners`),
 * so the layer is the same, byte for byte, without the round trip through
 * the disk. Modes lose setuid bits and hardlinks become copies of their
 * target, as on disk; device nodes and fifos are left out.
 *
 * Undefined when the archive needs the disk's answer: it is compressed; a
 * name is not in its clean form or comes twice; a whiteout; an entry whose
 * parent is not a directory entry before it (the extractor makes missing
 * parents, and follows symlinks on the way); a hardlink to anything but a
 * file before it; a malformed or hostile archive (the extractor then fails
 * with its own error).
 */
export async function archiveLayerEntries (path: string, signal?: AbortSignal): Promise<LayerEntry[] | undefined> {
  try {
    return await scanArchive(path, signal)
  } catch {
    // NotStreamable, or an archive the extractor refuses with its own error.
    signal?.throwIfAborted()
    return undefined
  }
}

class NotStreamable extends Error {}

async function scanArchive (path: string, signal?: AbortSignal): Promise<LayerEntry[]> {
  const fh = await open(path, 'r')
  try {
    const head = Buffer.alloc(6)
    await fh.read(head, 0, 6, 0)
    if (detectCompression(head) !== 'none') throw new NotStreamable()
  } finally {
    await fh.close()
  }
  const entries = new Map<string, LayerEntry>()
  const owners: LayerOwners = { owned: new Map(), whiteouts: [], opaques: [] }
  for await (const { header: h, offset } of readTar(createReadStream(path, { highWaterMark: 1 << 20 }))) {
    signal?.throwIfAborted()
    const comps = cleanComponents(h.name)
    const name = comps.join('/')
    if (h.name.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '') !== name) throw new NotStreamable()
    if (comps.length === 0) {
      if (h.type === 'directory') continue
      throw new NotStreamable()
    }
    const base = comps[comps.length - 1] as string
    if (base.startsWith(WHITEOUT_PREFIX)) throw new NotStreamable()
    if (h.type === 'char' || h.type === 'block' || h.type === 'fifo') continue
    if (entries.has(name)) throw new NotStreamable()
    for (let i = 1; i < comps.length; i++) {
      if (entries.get(comps.slice(0, i).join('/'))?.type !== 'directory') throw new NotStreamable()
    }
    const mode = h.mode & 0o1777
    switch (h.type) {
      case 'directory': entries.set(name, { type: 'directory', path: name, mode, mtime: h.mtime }); break
      case 'file': entries.set(name, { type: 'file', path: name, mode, mtime: h.mtime, source: path, offset, size: h.size }); break
      case 'symlink': entries.set(name, { type: 'symlink', path: name, target: h.linkname, mtime: h.mtime }); break
      case 'hardlink': {
        // On disk one inode: the link has its target's bytes, mode and mtime.
        const target = entries.get(cleanComponents(h.linkname).join('/'))
        if (target?.type !== 'file' || !('offset' in target)) throw new NotStreamable()
        entries.set(name, { ...target, path: name })
        break
      }
    }
    owners.owned.set(name, recorded(h.uid, h.gid, h.mode))
  }
  return withArchiveOwners([...entries.values()], '', owners)
}
