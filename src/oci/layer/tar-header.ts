/**
 * Tar headers (POSIX ustar + PAX, reading GNU long names too): the 512-byte
 * block format, parsing and deterministic encoding. Shared by the layer
 * reader and writer so both agree on every field.
 */
import { MAX_TAR_PATH_LENGTH } from '../constants.ts'
import { TarHeaderTooLargeError, TarInvalidError } from '../errors.ts'

export const BLOCK_SIZE = 512

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'directory' | 'fifo'

export interface TarHeader {
  /** Path as recorded, `/`-separated; not yet checked for safety. */
  name: string
  type: TarEntryType
  /** Permission bits including setuid/setgid/sticky (mask 0o7777). */
  mode: number
  uid: number
  gid: number
  /** Body size in bytes (0 for everything but files). */
  size: number
  /** Seconds since the epoch, integral. */
  mtime: number
  /** Target of a symlink or hardlink. */
  linkname: string
  uname: string
  gname: string
  devmajor: number
  devminor: number
}

/** Raw header block type flags. */
export const TYPE_FLAGS: Record<TarEntryType, string> = {
  file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', directory: '5', fifo: '6'
}
const FLAG_TO_TYPE: Record<string, TarEntryType> = {
  0: 'file', '\0': 'file', 7: 'file', 1: 'hardlink', 2: 'symlink', 3: 'char', 4: 'block', 5: 'directory', 6: 'fifo'
}

/** The header block fields as found in one block, before PAX / GNU overrides. */
export interface RawHeader {
  flag: string
  header: TarHeader
}

function cString (block: Uint8Array, start: number, length: number): string {
  let end = start
  while (end < start + length && block[end] !== 0) end++
  return Buffer.from(block.buffer, block.byteOffset + start, end - start).toString('utf8')
}

function parseNumber (block: Uint8Array, start: number, length: number, field: string, name: string): number {
  const first = block[start] ?? 0
  if ((first & 0x80) !== 0) {
    // GNU base-256: big-endian two's complement, high bit set. Negative values are refused.
    if ((first & 0x40) !== 0) throw new TarInvalidError(name, `negative ${field}`)
    let v = first & 0x3f
    for (let i = start + 1; i < start + length; i++) v = v * 256 + (block[i] ?? 0)
    if (!Number.isSafeInteger(v)) throw new TarInvalidError(name, `${field} too large`)
    return v
  }
  const text = cString(block, start, length).replace(/^[ ]+|[ ]+$/g, '')
  if (text === '') return 0
  if (!/^[0-7]+$/.test(text)) throw new TarInvalidError(name, `${field} is not an octal number: ${JSON.stringify(text)}`)
  const v = parseInt(text, 8)
  if (!Number.isSafeInteger(v)) throw new TarInvalidError(name, `${field} too large`)
  return v
}

export function isZeroBlock (block: Uint8Array): boolean {
  for (let i = 0; i < BLOCK_SIZE; i++) if (block[i] !== 0) return false
  return true
}

function checksum (block: Uint8Array): { unsigned: number, signed: number } {
  let unsigned = 0
  let signed = 0
  for (let i = 0; i < BLOCK_SIZE; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0)
    unsigned += b
    signed += b > 127 ? b - 256 : b
  }
  return { unsigned, signed }
}

/** Parses one 512-byte header block. Throws TarInvalidError on a bad checksum or field. */
export function parseHeaderBlock (block: Uint8Array): RawHeader {
  const name0 = cString(block, 0, 100)
  const stored = parseNumber(block, 148, 8, 'checksum', name0)
  const sum = checksum(block)
  if (stored !== sum.unsigned && stored !== sum.signed) throw new TarInvalidError(name0, 'header checksum mismatch')
  const flag = String.fromCharCode(block[156] ?? 0)
  const magic = cString(block, 257, 6)
  const prefix = magic === 'ustar' && block[262] === 0 ? cString(block, 345, 155) : ''
  const name = prefix === '' ? name0 : `${prefix}/${name0}`
  return {
    flag,
    header: {
      name,
      type: FLAG_TO_TYPE[flag] ?? 'file',
      mode: parseNumber(block, 100, 8, 'mode', name) & 0o7777,
      uid: parseNumber(block, 108, 8, 'uid', name),
      gid: parseNumber(block, 116, 8, 'gid', name),
      size: parseNumber(block, 124, 12, 'size', name),
      mtime: parseNumber(block, 136, 12, 'mtime', name),
      linkname: cString(block, 157, 100),
      uname: cString(block, 265, 32),
      gname: cString(block, 297, 32),
      devmajor: parseNumber(block, 329, 8, 'devmajor', name),
      devminor: parseNumber(block, 337, 8, 'devminor', name)
    }
  }
}

/** Whether a raw flag names an entry type (as opposed to PAX / GNU metadata or an unsupported type). */
export function entryTypeOf (flag: string): TarEntryType | undefined {
  return FLAG_TO_TYPE[flag]
}

/** Parses PAX records `LEN KEY=VALUE\n`. */
export function parsePaxRecords (data: Uint8Array, entry: string): Map<string, string> {
  const out = new Map<string, string>()
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  let pos = 0
  while (pos < buf.length) {
    if (buf[pos] === 0) break
    const space = buf.indexOf(0x20, pos)
    const len = space < 0 ? NaN : Number(buf.toString('latin1', pos, space))
    if (!Number.isSafeInteger(len) || len <= 0 || pos + len > buf.length || buf[pos + len - 1] !== 0x0a) {
      throw new TarInvalidError(entry, 'malformed PAX record')
    }
    const record = buf.toString('utf8', space + 1, pos + len - 1)
    const eq = record.indexOf('=')
    if (eq <= 0) throw new TarInvalidError(entry, 'malformed PAX record')
    out.set(record.slice(0, eq), record.slice(eq + 1))
    pos += len
  }
  return out
}

/** Applies PAX overrides to a header. Throws on values that do not parse. */
export function applyPax (h: TarHeader, pax: Map<string, string>): void {
  const num = (key: string, v: string): number => {
    const n = Number(v)
    if (!/^\d+(\.\d*)?$/.test(v) || !Number.isFinite(n) || n > Number.MAX_SAFE_INTEGER) throw new TarInvalidError(h.name, `PAX ${key} is not a number`)
    return Math.floor(n)
  }
  for (const [k, v] of pax) {
    switch (k) {
      case 'path': h.name = v; break
      case 'linkpath': h.linkname = v; break
      case 'size': h.size = num(k, v); break
      case 'uid': h.uid = num(k, v); break
      case 'gid': h.gid = num(k, v); break
      case 'mtime': h.mtime = num(k, v); break
      case 'uname': h.uname = v; break
      case 'gname': h.gname = v; break
      default: break
    }
  }
}

export function checkPathLength (h: TarHeader): void {
  if (Buffer.byteLength(h.name) > MAX_TAR_PATH_LENGTH) throw new TarHeaderTooLargeError(h.name.slice(0, 200), `path longer than ${MAX_TAR_PATH_LENGTH} bytes`)
  if (Buffer.byteLength(h.linkname) > MAX_TAR_PATH_LENGTH) throw new TarHeaderTooLargeError(h.name.slice(0, 200), `link target longer than ${MAX_TAR_PATH_LENGTH} bytes`)
}

// ---- encoding ----

const MAX_OCTAL_11 = 0o77777777777
const MAX_OCTAL_7 = 0o7777777

function writeString (block: Buffer, value: string, start: number, length: number): void {
  block.write(value, start, length, 'utf8')
}

function writeOctal (block: Buffer, value: number, start: number, length: number): void {
  block.write(value.toString(8).padStart(length - 1, '0') + '\0', start, length, 'latin1')
}

function paxRecord (key: string, value: string): string {
  const body = ` ${key}=${value}\n`
  let len = Buffer.byteLength(body) + 1
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body)
  return `${len}${body}`
}

function isAscii (s: string): boolean {
  return /^[\x01-\x7f]*$/.test(s)
}

/** Splits a long path into ustar prefix (<=155 bytes) and name (<=100 bytes) at a '/', or undefined. */
function splitUstar (path: string): { prefix: string, name: string } | undefined {
  if (!isAscii(path)) return undefined
  if (path.length <= 100) return { prefix: '', name: path }
  for (let i = path.length - 1; i > 0; i--) {
    if (path[i] !== '/') continue
    const prefix = path.slice(0, i)
    const name = path.slice(i + 1)
    if (prefix.length <= 155 && name.length <= 100 && name !== '') return { prefix, name }
    if (name.length > 100) return undefined
  }
  return undefined
}

function encodeBlock (h: TarHeader, flag: string, nameSplit: { prefix: string, name: string }, linkname: string, size: number): Buffer {
  const block = Buffer.alloc(BLOCK_SIZE)
  writeString(block, nameSplit.name, 0, 100)
  writeOctal(block, h.mode & 0o7777, 100, 8)
  writeOctal(block, Math.min(h.uid, MAX_OCTAL_7), 108, 8)
  writeOctal(block, Math.min(h.gid, MAX_OCTAL_7), 116, 8)
  writeOctal(block, size, 124, 12)
  writeOctal(block, Math.min(h.mtime, MAX_OCTAL_11), 136, 12)
  block.write(flag, 156, 1, 'latin1')
  writeString(block, linkname, 157, 100)
  block.write('ustar\x0000', 257, 8, 'latin1')
  writeString(block, h.uname, 265, 32)
  writeString(block, h.gname, 297, 32)
  writeOctal(block, h.devmajor, 329, 8)
  writeOctal(block, h.devminor, 337, 8)
  writeString(block, nameSplit.prefix, 345, 155)
  const sum = checksum(block).unsigned
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1')
  return block
}

/**
 * Encodes a header deterministically: ustar when the fields fit, a PAX
 * record only for the fields that do not (long or non-ASCII paths and link
 * targets, sizes from 8 GiB, large ids or mtimes).
 */
export function encodeHeader (h: TarHeader): Buffer {
  const pax: string[] = []
  let split = splitUstar(h.name)
  if (split === undefined) {
    pax.push(paxRecord('path', h.name))
    split = { prefix: '', name: Buffer.from(h.name).subarray(0, 100).toString('latin1').replace(/[^\x20-\x7e]/g, '_') }
  }
  let linkname = h.linkname
  if (Buffer.byteLength(linkname) > 100 || !isAscii(linkname)) {
    pax.push(paxRecord('linkpath', linkname))
    linkname = ''
  }
  if (h.size > MAX_OCTAL_11) pax.push(paxRecord('size', String(h.size)))
  if (h.uid > MAX_OCTAL_7) pax.push(paxRecord('uid', String(h.uid)))
  if (h.gid > MAX_OCTAL_7) pax.push(paxRecord('gid', String(h.gid)))
  if (h.mtime > MAX_OCTAL_11) pax.push(paxRecord('mtime', String(h.mtime)))
  const main = encodeBlock(h, TYPE_FLAGS[h.type], split, linkname, h.size > MAX_OCTAL_11 ? 0 : h.size)
  if (pax.length === 0) return main
  const body = Buffer.from(pax.join(''), 'utf8')
  const paxHeader: TarHeader = { ...h, type: 'file', mode: 0o644, uid: 0, gid: 0, size: body.length, linkname: '', uname: '', gname: '', devmajor: 0, devminor: 0 }
  const paxBlock = encodeBlock(paxHeader, 'x', { prefix: '', name: 'PaxHeaders/entry' }, '', body.length)
  return Buffer.concat([paxBlock, body, Buffer.alloc(padding(body.length)), main])
}

/** Zero bytes that pad a body of this size to a whole block. */
export function padding (size: number): number {
  const rem = size % BLOCK_SIZE
  return rem === 0 ? 0 : BLOCK_SIZE - rem
}
