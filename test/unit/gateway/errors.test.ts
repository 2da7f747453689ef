import { describe, expect, it } from 'vitest'
import { ERRNO_CODES, KILN_ERROR_CODES, OCI_ERRORS, RegistryApiError, errorBody, toRegistryApiError, wireCode } from '../../../src/gateway/errors.ts'
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
      RANGE_INVALID: 416,
      STORAGE_FULL: 507,
      REQUEST_TIMEOUT: 408,
      INTERNAL: 500
    })
  })

  it('sends the conditions the spec has no code for as UNKNOWN, the others as named', () => {
    const wire = Object.fromEntries(Object.keys(OCI_ERRORS).map(code => [code, wireCode(code as keyof typeof OCI_ERRORS)]))
    for (const [code, sent] of Object.entries(wire)) {
      expect(sent, code).toBe(['STORAGE_FULL', 'REQUEST_TIMEOUT', 'INTERNAL'].includes(code) ? 'UNKNOWN' : code)
    }
    expect(errorBody(new RegistryApiError('STORAGE_FULL')).errors[0]).toEqual({ code: 'UNKNOWN', message: OCI_ERRORS.STORAGE_FULL.message })
  })

  it('pins how kiln errors translate, by class', () => {
    expect(Object.fromEntries(KILN_ERROR_CODES.map(([cls, code]) => [cls.name, code]))).toEqual({
      NotFoundError: 'BLOB_UNKNOWN',
      InvalidDigestError: 'DIGEST_INVALID',
      DigestMismatchError: 'DIGEST_INVALID',
      SizeMismatchError: 'SIZE_INVALID',
      InvalidRangeError: 'RANGE_INVALID',
      ManifestInvalidError: 'MANIFEST_INVALID',
      ManifestTooLargeError: 'MANIFEST_INVALID',
      BodyIdleTimeoutError: 'REQUEST_TIMEOUT'
    })
    expect(new Set(KILN_ERROR_CODES.map(([cls]) => cls.name)).size).toBe(KILN_ERROR_CODES.length)
    // An error rebuilt by name (another copy of the module, a worker message) still translates.
    expect(toRegistryApiError(Object.assign(new Error('gone'), { name: 'NotFoundError' }))?.code).toBe('BLOB_UNKNOWN')
    expect(ERRNO_CODES).toEqual({ ENOSPC: 'STORAGE_FULL', EDQUOT: 'STORAGE_FULL' })
    expect(toRegistryApiError(new DigestMismatchError('sha256:a', 'sha256:b'))?.status).toBe(400)
    expect(toRegistryApiError(new NotFoundError('x'))?.code).toBe('BLOB_UNKNOWN')
    expect(toRegistryApiError(new Error('boom'))).toBeUndefined()
    // A full disk is told as such, without the server's paths that the system message names.
    const full = toRegistryApiError(Object.assign(new Error("ENOSPC: no space left on device, open '/data/kiln/gateway/uploads/x'"), { code: 'ENOSPC' }))
    expect(full).toMatchObject({ code: 'STORAGE_FULL', status: 507, detail: { errno: 'ENOSPC' } })
    expect(full?.message).toMatch(/disk is full/)
    expect(full?.message).not.toContain('/data')
  })

  it('renders the OCI error body', () => {
    const err = new RegistryApiError('NAME_UNKNOWN', 'no such repo', { detail: { name: 'x' } })
    expect(err.name).toBe('RegistryApiError')
    expect(errorBody(err)).toEqual({ errors: [{ code: 'NAME_UNKNOWN', message: 'no such repo', detail: { name: 'x' } }] })
  })
})
