/**
 * A small PNG reader for screenshot checks: the header's size, and the
 * pixels (8-bit RGB or RGBA, not interlaced, as Chromium writes them)
 * inflated with node:zlib and unfiltered, to count distinct colours.
 */
import { inflateSync } from 'node:zlib'

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

export interface DecodedPng {
  width: number
  height: number
  /** Distinct RGBA colours among the pixels. */
  colours: number
  /** Share of pixels of the most common colour (1: a blank image). */
  dominantShare: number
}

function paeth (a: number, b: number, c: number): number {
  const p = a + b - c
  const pa = Math.abs(p - a); const pb = Math.abs(p - b); const pc = Math.abs(p - c)
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c
}

/** Throws for anything but an 8-bit RGB(A), non-interlaced PNG. */
export function decodePng (bytes: Uint8Array): DecodedPng {
  const buf = Buffer.from(bytes)
  if (!buf.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG (bad signature)')
  let offset = 8
  let width = 0; let height = 0; let colourType = -1
  const idat: Buffer[] = []
  while (offset + 8 <= buf.byteLength) {
    const length = buf.readUInt32BE(offset)
    const type = buf.toString('latin1', offset + 4, offset + 8)
    const data = buf.subarray(offset + 8, offset + 8 + length)
    if (type === 'IHDR') {
      width = data.readUInt32BE(0)
      height = data.readUInt32BE(4)
      const depth = data[8]; colourType = data[9] as number; const interlace = data[12]
      if (depth !== 8 || (colourType !== 2 && colourType !== 6) || interlace !== 0) throw new Error(`unsupported PNG: depth ${depth}, colour type ${colourType}, interlace ${interlace}`)
    } else if (type === 'IDAT') {
      idat.push(data)
    } else if (type === 'IEND') {
      break
    }
    offset += 12 + length
  }
  if (width === 0 || height === 0) throw new Error('PNG without IHDR')
  const channels = colourType === 6 ? 4 : 3
  const stride = width * channels
  const raw = inflateSync(Buffer.concat(idat))
  if (raw.byteLength !== height * (stride + 1)) throw new Error(`PNG data is ${raw.byteLength} bytes, expected ${height * (stride + 1)}`)
  const prev = Buffer.alloc(stride)
  const line = Buffer.alloc(stride)
  const counts = new Map<number, number>()
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1))
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? line[x - channels] as number : 0
      const b = prev[x] as number
      const c = x >= channels ? prev[x - channels] as number : 0
      const v = src[x] as number
      line[x] = (filter === 0 ? v : filter === 1 ? v + a : filter === 2 ? v + b : filter === 3 ? v + ((a + b) >> 1) : v + paeth(a, b, c)) & 0xff
    }
    for (let x = 0; x < width; x++) {
      const i = x * channels
      const key = ((line[i] as number) << 24 | (line[i + 1] as number) << 16 | (line[i + 2] as number) << 8 | (channels === 4 ? line[i + 3] as number : 255)) >>> 0
      counts.set(key, (counts.get(key) ?? 0) + 1)
    }
    line.copy(prev)
  }
  return { width, height, colours: counts.size, dominantShare: Math.max(...counts.values()) / (width * height) }
}
