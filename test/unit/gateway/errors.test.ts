import { describe, expect, it } from 'vitest'
import { KILN_ERROR_CODES, OCI_ERRORS, RegistryApiError, errorBody, toRegistryApiError } from '../../../src/gateway/errors.ts'
import { DigestMismatchError, NotFoundError } from '../../../src/content/errors.ts'

describe('gateway error table', () => {
  it('pins every OCI code to its HTTP status', () => {
    const statuses = Object.fromEntries(Object.entries(OCI_ERRORS).map(([code, e]) => [code, e.status]))
    expect(statuses).toEqual({
      BLOB_UNKNOWN: 404,
      BLOB_UPLOAD_INVALID: 400,
      BLOB_UPLOAD_UNKNOWN: 404,
      DIGEST_INVALID: 400,
      MANIFEST_BLOB_UNKNOWN: 400,
      MANIFEST_INVALID: 400,
      MANIFEST_UNKNOWN: 404,
      NAME_INVALID: 400,
      NAME_UNKNOWN: 404,
      SIZE_INVALID: 400,
      UNAUTHORIZED: 401,
      DENIED: 403,
      UNSUPPORTED: 405,
      TOOMANYREQUESTS: 429,
      RANGE_INVALID: 416
    })
  })

  it('pins how kiln errors translate, by name', () => {
    expect(KILN_ERROR_CODES).toEqual({
      NotFoundError: 'BLOB_UNKNOWN',
      InvalidDigestError: 'DIGEST_INVALID',
      DigestMismatchError: 'DIGEST_INVALID',
      SizeMismatchError: 'SIZE_INVALID',
      InvalidRangeError: 'RANGE_INVALID',
      ManifestInvalidError: 'MANIFEST_INVALID',
      ManifestTooLargeError: 'MANIFEST_INVALID'
    })
    expect(toRegistryApiError(new DigestMismatchError('sha256:a', 'sha256:b'))?.status).toBe(400)
    expect(toRegistryApiError(new NotFoundError('x'))?.code).toBe('BLOB_UNKNOWN')
    expect(toRegistryApiError(new Error('boom'))).toBeUndefined()
  })

  it('renders the OCI error body', () => {
    const err = new RegistryApiError('NAME_UNKNOWN', 'no such repo', { detail: { name: 'x' } })
    expect(err.name).toBe('RegistryApiError')
    expect(errorBody(err)).toEqual({ errors: [{ code: 'NAME_UNKNOWN', message: 'no such repo', detail: { name: 'x' } }] })
  })
})
