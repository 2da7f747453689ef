/**
 * kiln's bulk Noise cipher must be wire-identical to @libp2p/noise's own:
 * the same ciphertext and tag for the same key, nonce and associated data,
 * each side able to open what the other sealed, and a tampered message refused.
 */
import { describe, it, expect } from 'vitest'
import { randomBytes } from 'node:crypto'
import { defaultCrypto } from '@libp2p/noise/crypto'
import { bulkNoiseCrypto } from '../../../src/p2p/node.ts'

describe('bulk Noise cipher', () => {
  const bulk = bulkNoiseCrypto()
  const key = new Uint8Array(randomBytes(32))
  const nonce = new Uint8Array(12); nonce[4] = 7
  const ad = new Uint8Array(randomBytes(32))

  for (const size of [100, 1199, 1200, 65_519]) {
    it(`seals ${size}-byte messages exactly as the stock cipher, and opens them both ways`, () => {
      const plain = new Uint8Array(randomBytes(size))
      const ours = Buffer.from(bulk.chaCha20Poly1305Encrypt(plain, nonce, ad, key).subarray())
      const theirs = Buffer.from(defaultCrypto.chaCha20Poly1305Encrypt(plain, nonce, ad, key).subarray())
      expect(ours.equals(theirs)).toBe(true)
      expect(Buffer.from(bulk.chaCha20Poly1305Decrypt(theirs, nonce, ad, key).subarray()).equals(Buffer.from(plain))).toBe(true)
      expect(Buffer.from(defaultCrypto.chaCha20Poly1305Decrypt(ours, nonce, ad, key).subarray()).equals(Buffer.from(plain))).toBe(true)
    })
  }

  it('refuses a tampered message and a wrong key', () => {
    const plain = new Uint8Array(randomBytes(4096))
    const sealed = Buffer.from(bulk.chaCha20Poly1305Encrypt(plain, nonce, ad, key).subarray())
    const tampered = Buffer.from(sealed); tampered[100] = (tampered[100] ?? 0) ^ 1
    expect(() => bulk.chaCha20Poly1305Decrypt(tampered, nonce, ad, key)).toThrow()
    expect(() => bulk.chaCha20Poly1305Decrypt(sealed, nonce, ad, new Uint8Array(randomBytes(32)))).toThrow()
  })
})
