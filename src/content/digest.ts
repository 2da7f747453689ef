/**
 * Digests and their CIDs.
 *
 * A digest is an OCI content identifier, `sha256:<64 lowercase hex>`; kiln
 * only produces and accepts sha256 (sha512 is allowed by the OCI spec but no
 * tool in the field emits it). A CID is CIDv1 with the `raw` codec and a
 * sha2-256 multihash over the same 32 bytes, so a digest and its CID name the
 * same hash and convert both ways with no I/O.
 */
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createMultihash } from 'multiformats/hashes/digest'
import { sha256 as sha256Hasher } from 'multiformats/hashes/sha2'
import { InvalidDigestError } from './errors.ts'

export type Digest = `sha256:${string}`

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/

export function isDigest (value: unknown): value is Digest {
  return typeof value === 'string' && DIGEST_RE.test(value)
}

/** Returns the digest unchanged, or throws InvalidDigestError saying what is wrong with it. */
export function parseDigest (value: string): Digest {
  if (isDigest(value)) return value
  if (/^sha512:/.test(value)) throw new InvalidDigestError(`unsupported digest algorithm in ${JSON.stringify(value)}: kiln uses sha256`)
  throw new InvalidDigestError(`invalid digest ${JSON.stringify(value)}: expected sha256:<64 lowercase hex characters>`)
}

export function digestHex (digest: Digest): string {
  return digest.slice('sha256:'.length)
}

export function sha256Digest (data: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`
}

export function digestToCid (digest: Digest): CID {
  const bytes = Buffer.from(digestHex(parseDigest(digest)), 'hex')
  return CID.createV1(raw.code, createMultihash(sha256Hasher.code, bytes))
}

export function cidToDigest (cid: CID | string): Digest {
  const c = typeof cid === 'string' ? CID.parse(cid) : cid
  if (c.multihash.code !== sha256Hasher.code) {
    throw new InvalidDigestError(`CID ${c.toString()} does not use sha2-256`)
  }
  return `sha256:${Buffer.from(c.multihash.digest).toString('hex')}`
}
