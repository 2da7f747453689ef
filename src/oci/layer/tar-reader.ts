/**
 * A streaming tar reader with hard limits, for layers from untrusted peers:
 * PAX and GNU long-name records above MAX_TAR_EXTENDED_HEADER_SIZE, and paths
 * above MAX_TAR_PATH_LENGTH, are refused before they are buffered; a stream
 * that ends inside a header or body is an error; a stream that ends without
 * the two zero blocks at a header boundary is accepted (as Go's archive/tar
 * does, and some layer writers omit them).
 */
import { MAX_TAR_EXTENDED_HEADER_SIZE } from '../constants.ts'
import { TarHeaderTooLargeError, TarInvalidError, UnsupportedEntryError } from '../errors.ts'
import { ByteReader } from './byte-reader.ts'
import type { ByteInput } from './byte-reader.ts'
import { BLOCK_SIZE, applyPax, checkPathLength, entryTypeOf, isZeroBlock, padding, parseHeaderBlock, parsePaxRecords } from './tar-header.ts'
import type { TarHeader } from './tar-header.ts'

export interface TarEntry {
  header: TarHeader
  /** Offset of the entry's first body byte in the input (for random access to archive members). */
  offset: number
  /**
   * The entry's bytes; for files only, empty otherwise. Read it before asking
   * for the next entry, or it is skipped. It can be read once.
   */
  body: AsyncIterable<Uint8Array>
}

async function readExtended (reader: ByteInput, size: number, entry: string): Promise<Uint8Array> {
  if (size > MAX_TAR_EXTENDED_HEADER_SIZE) throw new TarHeaderTooLargeError(entry, `extended header of ${size} bytes, limit ${MAX_TAR_EXTENDED_HEADER_SIZE}`)
  const data = await reader.read(size)
  if (data.byteLength < size) throw new TarInvalidError(entry, 'stream ends inside an extended header')
  // Copy: the reader's buffer may be reused, and this lives until the next header.
  const copy = new Uint8Array(data)
  await skipPadding(reader, size, entry)
  return copy
}

async function skipPadding (reader: ByteInput, size: number, entry: string): Promise<void> {
  const pad = padding(size)
  if (pad > 0 && await reader.skip(pad) < pad) throw new TarInvalidError(entry, 'stream ends inside block padding')
}

function gnuString (data: Uint8Array): string {
  const end = data.indexOf(0)
  return Buffer.from(data.buffer, data.byteOffset, end < 0 ? data.byteLength : end).toString('utf8')
}

/**
 * Reads tar entries from a byte stream (uncompressed). Once the end of the
 * archive is reached, the rest of the source is read and discarded, so that
 * a decompressor or hasher upstream sees every byte.
 */
export async function * readTar (source: AsyncIterable<Uint8Array> | ByteInput): AsyncGenerator<TarEntry> {
  const reader = 'stream' in source ? source : new ByteReader(source)
  let pax: Map<string, string> | undefined
  let globalPax = new Map<string, string>()
  let longName: string | undefined
  let longLink: string | undefined
  let lastName = ''
  try {
    for (;;) {
      const block = await reader.read(BLOCK_SIZE)
      if (block.byteLength === 0) break
      if (block.byteLength < BLOCK_SIZE) throw new TarInvalidError(lastName, 'stream ends inside a header block')
      if (isZeroBlock(block)) {
        await reader.drain()
        break
      }
      const { flag, header } = parseHeaderBlock(block)
      lastName = header.name
      switch (flag) {
        case 'x':
          pax = parsePaxRecords(await readExtended(reader, header.size, header.name), header.name)
          continue
        case 'g':
          globalPax = new Map([...globalPax, ...parsePaxRecords(await readExtended(reader, header.size, header.name), header.name)])
          continue
        case 'L':
          longName = gnuString(await readExtended(reader, header.size, header.name))
          continue
        case 'K':
          longLink = gnuString(await readExtended(reader, header.size, header.name))
          continue
      }
      if (entryTypeOf(flag) === undefined) {
        throw new UnsupportedEntryError(header.name, flag === 'S' ? 'GNU sparse file' : `type flag ${JSON.stringify(flag)}`)
      }
      // Global records apply to every later entry, except the per-entry ones where that makes no sense.
      for (const [k, v] of globalPax) {
        if (k === 'path' || k === 'linkpath' || k === 'size') continue
        pax ??= new Map()
        if (!pax.has(k)) pax.set(k, v)
      }
      if (longName !== undefined) header.name = longName
      if (longLink !== undefined) header.linkname = longLink
      if (pax !== undefined) {
        if ([...pax.keys()].some(k => k.startsWith('GNU.sparse.'))) throw new UnsupportedEntryError(header.name, 'PAX sparse file')
        applyPax(header, pax)
      }
      pax = undefined
      longName = undefined
      longLink = undefined
      lastName = header.name
      checkPathLength(header)
      if (header.type !== 'file') header.size = 0

      let left = header.size
      const name = header.name
      const body = {
        async * [Symbol.asyncIterator] () {
          for await (const chunk of reader.stream(left)) {
            left -= chunk.byteLength
            yield chunk
          }
          if (left > 0) throw new TarInvalidError(name, 'stream ends inside the entry body')
        }
      }
      yield { header, offset: reader.offset, body }
      if (left > 0 && await reader.skip(left) < left) throw new TarInvalidError(name, 'stream ends inside the entry body')
      left = 0
      await skipPadding(reader, header.size, name)
    }
  } finally {
    await reader.close()
  }
}
