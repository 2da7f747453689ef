/**
 * Errors thrown by the registry client, one class per condition. Callers
 * branch on `name`, never on the message text. `status` is the HTTP status
 * and `codes` the OCI error codes the registry sent, when it sent any.
 */

export class RegistryUnauthorizedError extends Error {
  static override readonly name = 'RegistryUnauthorizedError'
  override readonly name = RegistryUnauthorizedError.name
  readonly code = 'ERR_REGISTRY_UNAUTHORIZED'
  readonly status: number
  constructor (message: string, status: number) { super(message); this.status = status }
}

export class RegistryNotFoundError extends Error {
  static override readonly name = 'RegistryNotFoundError'
  override readonly name = RegistryNotFoundError.name
  readonly code = 'ERR_REGISTRY_NOT_FOUND'
  readonly codes: string[]
  constructor (message: string, codes: string[] = []) { super(message); this.codes = codes }
}

/** Any other refusal: the registry answered, but not with what the protocol promises. */
export class RegistryResponseError extends Error {
  static override readonly name = 'RegistryResponseError'
  override readonly name = RegistryResponseError.name
  readonly code = 'ERR_REGISTRY_RESPONSE'
  readonly status: number
  readonly codes: string[]
  constructor (message: string, status: number, codes: string[] = []) { super(message); this.status = status; this.codes = codes }
}

/** The registry served a manifest whose digest is not the one asked for (or announced). */
export class ManifestDigestMismatchError extends Error {
  static override readonly name = 'ManifestDigestMismatchError'
  override readonly name = ManifestDigestMismatchError.name
  readonly code = 'ERR_MANIFEST_DIGEST_MISMATCH'
  constructor (message: string) { super(message) }
}

export class AuthFileInvalidError extends Error {
  static override readonly name = 'AuthFileInvalidError'
  override readonly name = AuthFileInvalidError.name
  readonly code = 'ERR_AUTH_FILE_INVALID'
  readonly path: string
  constructor (path: string, message: string) { super(`${path}: ${message}`); this.path = path }
}
