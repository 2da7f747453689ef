/**
 * Bearer tokens issued by the gateway's /token endpoint: short-lived,
 * HMAC-SHA256 signed with a key only this gateway holds, carrying the granted
 * access entries. Format: `kiln1.<payload base64url>.<mac base64url>`.
 * The payload is parsed with zod after the MAC checks out.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { z } from 'zod'
import type { AccessEntry } from './access.ts'

const PREFIX = 'kiln1'

const TokenPayloadSchema = z.object({
  sub: z.string().optional(),
  aud: z.string(),
  iat: z.number().int(),
  exp: z.number().int(),
  access: z.array(z.object({
    type: z.enum(['repository', 'registry']),
    name: z.string(),
    actions: z.array(z.string())
  }))
})
export type TokenPayload = z.infer<typeof TokenPayloadSchema>

function mac (key: Uint8Array, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest()
}

export function signToken (key: Uint8Array, payload: TokenPayload): string {
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url')
  return `${PREFIX}.${body}.${mac(key, `${PREFIX}.${body}`).toString('base64url')}`
}

/** The payload of a valid, unexpired token for `audience`; undefined otherwise. */
export function verifyToken (key: Uint8Array, token: string, audience: string, nowSeconds = Math.floor(Date.now() / 1000)): TokenPayload | undefined {
  const parts = token.split('.')
  if (parts.length !== 3 || parts[0] !== PREFIX) return undefined
  const expected = mac(key, `${PREFIX}.${parts[1] as string}`)
  const given = Buffer.from(parts[2] as string, 'base64url')
  if (given.byteLength !== expected.byteLength || !timingSafeEqual(given, expected)) return undefined
  let json: unknown
  try { json = JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString('utf8')) } catch { return undefined }
  const r = TokenPayloadSchema.safeParse(json)
  if (!r.success || r.data.aud !== audience || r.data.exp <= nowSeconds) return undefined
  return r.data
}

export type { AccessEntry }
