/**
 * The gateway's one error table: every failure the API reports is one of the
 * conditions below, with its HTTP status. Most are the OCI distribution-spec
 * error codes and go on the wire as they are named; the spec has no code for
 * the last three, which go out as distribution's `UNKNOWN` code with their
 * own status and a message that says what happened (clients that ignore the
 * body of a 5xx still show its status line). A test pins the table; change
 * it only together with that test.
 *
 * Errors thrown by other modules (content store, OCI model) are translated
 * by their class through KILN_ERROR_CODES (matched by name, as
 * src/util/error-class.ts does it), never by message text; system errors by
 * their errno `code` through ERRNO_CODES.
 */
import { DigestMismatchError, InvalidDigestError, InvalidRangeError, NotFoundError, SizeMismatchError } from '../content/errors.ts'
import { ManifestInvalidError, ManifestTooLargeError } from '../oci/errors.ts'
import { lookupErrorClass } from '../util/error-class.ts'
import type { ErrorClass } from '../util/error-class.ts'
import { BodyIdleTimeoutError } from './request-body.ts'

export const OCI_ERRORS = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  RANGE_INVALID: { status: 416, message: 'invalid content range' },
  // 507 Insufficient Storage (RFC 4918): the push was dropped; nothing retries it before someone frees space.
  STORAGE_FULL: { status: 507, message: "the registry's disk is full (or its quota is used up): this push was dropped; push again once space is freed", wire: 'UNKNOWN' },
  REQUEST_TIMEOUT: { status: 408, message: 'no request body bytes arrived for too long', wire: 'UNKNOWN' },
  INTERNAL: { status: 500, message: 'internal error', wire: 'UNKNOWN' }
} as const satisfies Record<string, { status: number, message: string, wire?: string }>

export type OciErrorCode = keyof typeof OCI_ERRORS

/** The code a condition is sent as. */
export function wireCode (code: OciErrorCode): string {
  const entry = OCI_ERRORS[code]
  return 'wire' in entry ? entry.wire : code
}

/**
 * Error classes of kiln's modules and the OCI code each becomes when one of
 * its errors escapes a handler. Anything not listed is a 500 with no detail.
 */
export const KILN_ERROR_CODES: ReadonlyArray<readonly [ErrorClass, OciErrorCode]> = [
  [NotFoundError, 'BLOB_UNKNOWN'],
  [InvalidDigestError, 'DIGEST_INVALID'],
  [DigestMismatchError, 'DIGEST_INVALID'],
  [SizeMismatchError, 'SIZE_INVALID'],
  [InvalidRangeError, 'RANGE_INVALID'],
  [ManifestInvalidError, 'MANIFEST_INVALID'],
  [ManifestTooLargeError, 'MANIFEST_INVALID'],
  [BodyIdleTimeoutError, 'REQUEST_TIMEOUT']
]

/** System errors, by errno code. A quota is a full disk for whoever hits it (HPC data dirs often have one). */
export const ERRNO_CODES: Readonly<Record<string, OciErrorCode>> = {
  ENOSPC: 'STORAGE_FULL',
  EDQUOT: 'STORAGE_FULL'
}

/** Whether an error means the disk (or the user's quota on it) is full. */
export function isStorageFull (err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  return code !== undefined && ERRNO_CODES[code] === 'STORAGE_FULL'
}

/** A failure to report to the client as `{"errors":[{code,message,detail}]}` with the table's status. */
export class RegistryApiError extends Error {
  static override readonly name = 'RegistryApiError'
  override readonly name = RegistryApiError.name
  readonly code: OciErrorCode
  readonly status: number
  readonly detail: unknown
  /** Extra response headers (WWW-Authenticate, Range, Content-Range...). */
  readonly headers: Readonly<Record<string, string>>
  constructor (code: OciErrorCode, message?: string, options: { detail?: unknown, headers?: Record<string, string> } = {}) {
    super(message ?? OCI_ERRORS[code].message)
    this.code = code
    this.status = OCI_ERRORS[code].status
    this.detail = options.detail
    this.headers = options.headers ?? {}
  }
}

/**
 * A tag whose records the pull-through found, none of them accepted: the
 * signer is not trusted by this gateway's policy, or its record could not
 * be read or verified (protocols/tag.md). The client gets MANIFEST_UNKNOWN
 * with each signer and the reason in the error's `detail`, not only the log.
 */
export class TagRecordsRefusedError extends Error {
  static override readonly name = 'TagRecordsRefusedError'
  override readonly name = TagRecordsRefusedError.name
  readonly code = 'ERR_TAG_RECORDS_REFUSED'
  /** Each signer whose record was skipped, and why. */
  readonly skipped: ReadonlyArray<{ signer: string, reason: string }>
  constructor (repository: string, tag: string, skipped: ReadonlyArray<{ signer: string, reason: string }>) {
    super(`${repository}:${tag} has tag records on the network, but this gateway accepted none (reasons in detail.refused; to trust a signer: kiln trust add-peer PEER --roles builder, or add-root, on the gateway)`)
    this.skipped = skipped
  }
}

export interface OciErrorBody {
  errors: Array<{ code: string, message: string, detail?: unknown }>
}

/** Translates any thrown value into a RegistryApiError, or undefined for an internal error (500). */
export function toRegistryApiError (err: unknown): RegistryApiError | undefined {
  if (err instanceof RegistryApiError) return err
  if (err instanceof Error) {
    const code = lookupErrorClass(KILN_ERROR_CODES, err)
    if (code !== undefined) return new RegistryApiError(code, err.message)
    // The table's message, not the system's: that one names paths on the server.
    const errno = ERRNO_CODES[(err as NodeJS.ErrnoException).code ?? '']
    if (errno !== undefined) return new RegistryApiError(errno, undefined, { detail: { errno: (err as NodeJS.ErrnoException).code } })
  }
  return undefined
}

export function errorBody (err: RegistryApiError): OciErrorBody {
  return { errors: [{ code: wireCode(err.code), message: err.message, ...(err.detail === undefined ? {} : { detail: err.detail }) }] }
}
