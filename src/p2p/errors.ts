/**
 * Errors thrown by the peer network. Callers branch on `name`, never on the
 * message text.
 */
import type { ErrorClass } from '../util/error-class.ts'

/** The identity file exists but cannot be used (unreadable, wrong type, too open). */
export class InvalidIdentityError extends Error {
  static override readonly name = 'InvalidIdentityError'
  override readonly name = InvalidIdentityError.name
  readonly code = 'ERR_INVALID_IDENTITY'
  constructor (message: string, options?: ErrorOptions) { super(message, options) }
}

/** A capability record failed validation (schema, size, signature, expiry, key). */
export class InvalidCapabilityRecordError extends Error {
  static override readonly name = 'InvalidCapabilityRecordError'
  override readonly name = InvalidCapabilityRecordError.name
  readonly code = 'ERR_INVALID_CAPABILITY_RECORD'
  constructor (message: string, options?: ErrorOptions) { super(message, options) }
}

/** A peer broke a stream protocol: short stream, oversized frame, unrequested bytes, bad JSON. */
export class StreamProtocolError extends Error {
  static override readonly name = 'StreamProtocolError'
  override readonly name = StreamProtocolError.name
  readonly code = 'ERR_STREAM_PROTOCOL'
  constructor (message: string, options?: ErrorOptions) { super(message, options) }
}

/** A capability record could not be stored on any peer (no peers yet, or none answered in time). */
export class PublishError extends Error {
  static override readonly name = 'PublishError'
  override readonly name = PublishError.name
  readonly code = 'ERR_PUBLISH'
  constructor (message: string, options?: ErrorOptions) { super(message, options) }
}

/**
 * libp2p's error when the node cannot listen on a configured address (a port
 * in use; a `relayVia` relay it cannot reserve on while starting). The
 * package does not export the class; this stands for it in isErrorOf.
 */
export const UnsupportedListenAddressesErrorName: ErrorClass = { name: 'UnsupportedListenAddressesError', prototype: Error.prototype }
