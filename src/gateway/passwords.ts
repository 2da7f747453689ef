/**
 * Password hashes for gateway users: scrypt from node:crypto, stored as
 * `$scrypt$N=32768,r=8,p=1$<salt base64>$<key base64>`. `kiln gateway
 * hash-password` prints one for a users file.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto'
import type { ScryptOptions } from 'node:crypto'
import { SCRYPT_PARAMS } from './constants.ts'

function scrypt (password: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, keyLength, options, (err, key) => { if (err === null) resolve(key); else reject(err) })
  })
}

const HASH_RE = /^\$scrypt\$N=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/

export async function hashPassword (password: string): Promise<string> {
  const { N, r, p, keyLength, maxmem } = SCRYPT_PARAMS
  const salt = randomBytes(16)
  const key = await scrypt(password, salt, keyLength, { N, r, p, maxmem })
  return `$scrypt$N=${N},r=${r},p=${p}$${salt.toString('base64')}$${key.toString('base64')}`
}

/**
 * A hash with hashPassword's parameters that no password matches (a random
 * key, not one derived from any password): checking an unknown user name
 * against it costs what checking a real user's password costs, so response
 * times do not tell which names exist.
 */
export function unmatchableHash (): string {
  const { N, r, p, keyLength } = SCRYPT_PARAMS
  return `$scrypt$N=${N},r=${r},p=${p}$${randomBytes(16).toString('base64')}$${randomBytes(keyLength).toString('base64')}`
}

export function isPasswordHash (value: string): boolean {
  return HASH_RE.test(value)
}

/** Whether password matches the stored hash; false (never a throw) for a malformed hash. */
export async function verifyPassword (password: string, stored: string): Promise<boolean> {
  const m = HASH_RE.exec(stored)
  if (m === null) return false
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])]
  const expected = Buffer.from(m[5] as string, 'base64')
  if (expected.byteLength < 16 || N > 1 << 20 || r > 32 || p > 16) return false
  const key = await scrypt(password, Buffer.from(m[4] as string, 'base64'), expected.byteLength,
    { N, r, p, maxmem: Math.max(SCRYPT_PARAMS.maxmem, 256 * N * r) })
  return timingSafeEqual(key, expected)
}
