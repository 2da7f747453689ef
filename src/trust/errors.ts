/**
 * Errors thrown by src/trust. One class per condition; callers branch on
 * `name` (or `code`), never on the message text. Every verification error
 * extends nothing but Error, so that an `instanceof` chain cannot hide one
 * condition behind another.
 */

/** Not a well-formed envelope: size, canonical form, fields, validity span or payload schema. */
export class EnvelopeInvalidError extends Error {
  static override readonly name = 'EnvelopeInvalidError'
  override readonly name = EnvelopeInvalidError.name
  readonly code = 'ERR_ENVELOPE_INVALID'
  constructor (message: string) { super(message) }
}

export class WrongTypeError extends Error {
  static override readonly name = 'WrongTypeError'
  override readonly name = WrongTypeError.name
  readonly code = 'ERR_WRONG_TYPE'
  readonly expected: string
  readonly actual: string
  constructor (expected: string, actual: string) {
    super(`expected a ${expected} envelope, got ${JSON.stringify(actual)}`)
    this.expected = expected
    this.actual = actual
  }
}

/** The envelope's major version is not one this node knows. */
export class UnknownVersionError extends Error {
  static override readonly name = 'UnknownVersionError'
  override readonly name = UnknownVersionError.name
  readonly code = 'ERR_UNKNOWN_VERSION'
  readonly version: string
  constructor (type: string, version: string, known: number) {
    super(`${type} envelope version ${version} is not supported (this node knows major version ${known})`)
    this.version = version
  }
}

export class BadSignatureError extends Error {
  static override readonly name = 'BadSignatureError'
  override readonly name = BadSignatureError.name
  readonly code = 'ERR_BAD_SIGNATURE'
  constructor (message: string) { super(message) }
}

export class ExpiredError extends Error {
  static override readonly name = 'ExpiredError'
  override readonly name = ExpiredError.name
  readonly code = 'ERR_EXPIRED'
  readonly expiresAt: number
  constructor (expiresAt: number, now: number) {
    super(`envelope expired at ${new Date(expiresAt).toISOString()} (now ${new Date(now).toISOString()})`)
    this.expiresAt = expiresAt
  }
}

export class NotYetValidError extends Error {
  static override readonly name = 'NotYetValidError'
  override readonly name = NotYetValidError.name
  readonly code = 'ERR_NOT_YET_VALID'
  readonly issuedAt: number
  constructor (issuedAt: number, now: number) {
    super(`envelope issued in the future, at ${new Date(issuedAt).toISOString()} (now ${new Date(now).toISOString()}): check the clocks`)
    this.issuedAt = issuedAt
  }
}

export class ReplayError extends Error {
  static override readonly name = 'ReplayError'
  override readonly name = ReplayError.name
  readonly code = 'ERR_REPLAY'
  constructor (message: string) { super(message) }
}

/** A key file that is missing, unreadable, of the wrong type or too widely readable. */
export class KeyFileError extends Error {
  static override readonly name = 'KeyFileError'
  override readonly name = KeyFileError.name
  readonly code = 'ERR_KEY_FILE'
  constructor (message: string) { super(message) }
}

/** A trust.yaml that does not parse or does not match its schema. */
export class PolicyFileError extends Error {
  static override readonly name = 'PolicyFileError'
  override readonly name = PolicyFileError.name
  readonly code = 'ERR_POLICY_FILE'
  constructor (message: string) { super(message) }
}
