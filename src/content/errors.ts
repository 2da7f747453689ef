/**
 * Errors thrown by the content store. Callers branch on `name` (or `code`),
 * never on the message text.
 */

export class NotFoundError extends Error {
  override readonly name = 'NotFoundError'
  readonly code = 'ERR_NOT_FOUND'
  constructor (message: string) { super(message) }
}

export class InvalidDigestError extends Error {
  override readonly name = 'InvalidDigestError'
  readonly code = 'ERR_INVALID_DIGEST'
  constructor (message: string) { super(message) }
}

export class DigestMismatchError extends Error {
  override readonly name = 'DigestMismatchError'
  readonly code = 'ERR_DIGEST_MISMATCH'
  readonly expected: string
  readonly actual: string
  constructor (expected: string, actual: string) {
    super(`content digest mismatch: expected ${expected}, got ${actual}`)
    this.expected = expected
    this.actual = actual
  }
}

export class SizeMismatchError extends Error {
  override readonly name = 'SizeMismatchError'
  readonly code = 'ERR_SIZE_MISMATCH'
  readonly expected: number
  readonly actual: number
  constructor (expected: number, actual: number, detail = '') {
    super(`content size mismatch: expected ${expected} bytes, got ${actual}${detail === '' ? '' : ` (${detail})`}`)
    this.expected = expected
    this.actual = actual
  }
}

export class InvalidRangeError extends Error {
  override readonly name = 'InvalidRangeError'
  readonly code = 'ERR_INVALID_RANGE'
  constructor (message: string) { super(message) }
}

/** A blob that is still referenced (by a ref, pin or lease) cannot be deleted. */
export class InUseError extends Error {
  override readonly name = 'InUseError'
  readonly code = 'ERR_IN_USE'
  constructor (message: string) { super(message) }
}
