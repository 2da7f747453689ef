import { describe, expect, it } from 'vitest'
import { CanonicalJsonError, canonicalJson, parseCanonical, signingBytes } from '../../../protocols/envelope.ts'

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)

describe('canonical JSON', () => {
  it('sorts keys at every level and writes no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [true, null], c: 'x' } })).toBe('{"a":{"c":"x","d":[true,null]},"b":1}')
  })

  it('sorts by UTF-16 code units, as RFC 8785', () => {
    expect(canonicalJson({ é: 1, z: 2, Z: 3, '\u{1F600}': 4, '\uFFFD': 5 })).toBe('{"Z":3,"z":2,"é":1,"\u{1F600}":4,"\uFFFD":5}')
  })

  it.each([1.5, NaN, Infinity, -Infinity, 2 ** 53])('refuses the number %s', n => {
    expect(() => canonicalJson({ n })).toThrow(CanonicalJsonError)
  })

  it('writes -0 as 0 and refuses undefined, functions, bigint, class instances and lone surrogates', () => {
    expect(canonicalJson(-0)).toBe('0')
    for (const bad of [{ a: undefined }, { f: () => 1 }, { b: 1n }, new Date(0), { s: '\ud800' }]) {
      expect(() => canonicalJson(bad)).toThrow(CanonicalJsonError)
    }
  })

  it('refuses nesting deeper than the limit', () => {
    let deep: unknown = 1
    for (let i = 0; i < 40; i++) deep = [deep]
    expect(() => canonicalJson(deep)).toThrow(/deeper/)
  })

  it('round-trips its own output', () => {
    const v = { z: [1, -2, 'a"\\\n\u0001'], a: { x: null } }
    expect(parseCanonical(enc(canonicalJson(v)))).toEqual(v)
  })

  it.each([
    ['duplicate key', '{"a":1,"a":2}'],
    ['unsorted keys', '{"b":1,"a":2}'],
    ['whitespace', '{"a": 1}'],
    ['float written as 1.0', '{"a":1.0}'],
    ['exponent', '{"a":1e3}'],
    ['fraction', '{"a":0.5}'],
    ['alternative escape', '{"a":"\\u0041"}'],
    ['unsafe integer', '{"a":9007199254740993}']
  ])('parse refuses %s', (_label, text) => {
    expect(() => parseCanonical(enc(text))).toThrow(CanonicalJsonError)
  })

  it('parse refuses invalid UTF-8 and oversized input', () => {
    expect(() => parseCanonical(new Uint8Array([0x22, 0xff, 0x22]))).toThrow(/UTF-8/)
    expect(() => parseCanonical(enc('"abcdef"'), 4)).toThrow(/limit/)
  })

  it('prefixes the domain of the type and major version, then a zero byte', () => {
    const unsigned = { type: 'job', version: '1.3', signer: 'x', issuedAt: 1, expiresAt: 2, nonce: 'n', payload: {} }
    const bytes = signingBytes(unsigned)
    const text = new TextDecoder().decode(bytes)
    expect(text.startsWith('kiln/job/v1\u0000{')).toBe(true)
    expect(text.slice('kiln/job/v1\u0000'.length)).toBe(canonicalJson(unsigned))
    expect(() => signingBytes({ ...unsigned, type: 'nope' })).toThrow(CanonicalJsonError)
  })
})
