/** Errors of blob exchange. Callers branch on `name`. */

/** No provider could be found, or every provider failed or was banned. */
export class NoProvidersError extends Error {
  static override readonly name = 'NoProvidersError'
  override readonly name = NoProvidersError.name
  readonly code = 'ERR_NO_PROVIDERS'
  constructor (message: string, options?: ErrorOptions) { super(message, options) }
}

/** A peer answered a blob request with an error status or a malformed response. */
export class BlobRequestError extends Error {
  static override readonly name = 'BlobRequestError'
  override readonly name = BlobRequestError.name
  readonly code = 'ERR_BLOB_REQUEST'
  /** The response status, or 'protocol' for a malformed response. */
  readonly status: string
  constructor (status: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.status = status
  }
}

/** Every round of fetching ended with bytes that do not hash to the digest. */
export class BlobVerificationError extends Error {
  static override readonly name = 'BlobVerificationError'
  override readonly name = BlobVerificationError.name
  readonly code = 'ERR_BLOB_VERIFICATION'
  constructor (message: string, options?: ErrorOptions) { super(message, options) }
}
