/**
 * Errors thrown by the content store. Callers branch on `name` (or `code`),
 * never on the message text.
 */

export class NotFoundError extends Error {
  static override readonly name = 'NotFoundError'
  override readonly name = NotFoundError.name
  readonly code = 'ERR_NOT_FOUND'
  constructor (message: string) { super(message) }
}

export class InvalidDigestError extends Error {
  static override readonly name = 'InvalidDigestError'
  override readonly name = InvalidDigestError.name
  readonly code = 'ERR_INVALID_DIGEST'
  constructor (message: string) { super(message) }
}

export class DigestMismatchError extends Error {
  static override readonly name = 'DigestMismatchError'
  override readonly name = DigestMismatchError.name
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
  static override readonly name = 'SizeMismatchError'
  override readonly name = SizeMismatchError.name
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
  static override readonly name = 'InvalidRangeError'
  override readonly name = InvalidRangeError.name
  readonly code = 'ERR_INVALID_RANGE'
  constructor (message: string) { super(message) }
}

/** A blob that is still referenced (by a ref, pin or lease) cannot be deleted. */
export class InUseError extends Error {
  static override readonly name = 'InUseError'
  override readonly name = InUseError.name
  readonly code = 'ERR_IN_USE'
  constructor (message: string) { super(message) }
}

/** A pin target that is neither a digest nor a `REPO:TAG` name. */
export class InvalidPinTargetError extends Error {
  static override readonly name = 'InvalidPinTargetError'
  override readonly name = InvalidPinTargetError.name
}
