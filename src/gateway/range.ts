/**
 * Byte ranges in both directions: the `Range: bytes=...` a client sends to
 * read part of a blob (RFC 9110 §14.1.2; one range only), and the
 * `Content-Range: <start>-<end>` of a chunked upload PATCH (spec §"Pushing
 * a blob in chunks").
 */
import { RegistryApiError } from './errors.ts'

export interface ByteRange {
  offset: number
  length: number
}

/**
 * The range to serve of a blob of `size` bytes, or undefined for the whole
 * blob (no header, or a form we ignore as RFC 9110 allows). Throws
 * RANGE_INVALID, with `Content-Range: bytes * /size`, when unsatisfiable.
 */
export function parseRangeHeader (header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (m === null || (m[1] === '' && m[2] === '')) return undefined
  const unsatisfiable = (): RegistryApiError =>
    new RegistryApiError('RANGE_INVALID', `range ${header} not satisfiable for ${size} bytes`, { headers: { 'content-range': `bytes */${size}` } })
  if (m[1] === '') {
    const suffix = Number(m[2])
    if (suffix === 0 || size === 0) throw unsatisfiable()
    const length = Math.min(suffix, size)
    return { offset: size - length, length }
  }
  const start = Number(m[1])
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  if (start >= size || end < start) throw unsatisfiable()
  return { offset: start, length: end - start + 1 }
}

/** Parses an upload Content-Range (`0-1023`, also `bytes 0-1023` and `bytes=0-1023`); throws RANGE_INVALID when malformed. */
export function parseContentRange (header: string): { start: number, end: number } {
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim())
  if (m === null) throw new RegistryApiError('RANGE_INVALID', `malformed Content-Range ${JSON.stringify(header)}`)
  const start = Number(m[1])
  const end = Number(m[2])
  if (end < start) throw new RegistryApiError('RANGE_INVALID', `Content-Range ${header} ends before it starts`)
  return { start, end }
}
