/**
 * The blob protocol `/kiln/blob/1.0.0`: ranged reads of content-addressed
 * blobs from a peer (see ./blob.md, the normative text). Schemas and framing
 * only; no I/O.
 */
import { z } from 'zod'
import { BLOB_MAX_RANGE_BYTES } from './constants.ts'

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/
const Offset = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)

/** §2 request: a range of a blob; `length` 0 asks only for the blob's size. */
export const BlobRequestSchema = z.strictObject({
  digest: z.string().regex(DIGEST_RE),
  offset: Offset,
  length: z.number().int().min(0).max(BLOB_MAX_RANGE_BYTES)
})
export type BlobRequest = z.infer<typeof BlobRequestSchema>

/**
 * §3 response header. `ok`: exactly `length` bytes follow. Any other status:
 * nothing follows and the server may close the stream.
 */
export const BlobResponseSchema = z.discriminatedUnion('status', [
  z.strictObject({ status: z.literal('ok'), size: Offset, offset: Offset, length: z.number().int().min(0).max(BLOB_MAX_RANGE_BYTES) }),
  z.strictObject({ status: z.literal('not-found') }),
  z.strictObject({ status: z.literal('invalid-range'), size: Offset }),
  z.strictObject({ status: z.literal('bad-request'), message: z.string().max(256) }),
  z.strictObject({ status: z.literal('busy') })
])
export type BlobResponse = z.infer<typeof BlobResponseSchema>
