import { describe, expect, it } from 'vitest'
import { createStepCache, stepKey } from '../../../src/cache/index.ts'
import { sha256Digest } from '../../../src/content/index.ts'
import { openDb } from '../../../src/db/index.ts'

describe('step cache keys', () => {
  it('depend on the parent key, the canonical step and every input, in order', () => {
    const k = stepKey('parent', 'RUN x', ['a', 'b'])
    expect(stepKey('parent', 'RUN x', ['a', 'b'])).toBe(k)
    expect(new Set([
      k,
      stepKey('other', 'RUN x', ['a', 'b']),
      stepKey('parent', 'RUN y', ['a', 'b']),
      stepKey('parent', 'RUN x', ['a', 'c']),
      stepKey('parent', 'RUN x', ['b', 'a']),
      stepKey('parent', 'RUN x', ['ab']),
      stepKey('parent', 'RUN x')
    ]).size).toBe(7)
  })
})

describe('step cache store', () => {
  it('keeps a layer per key in the db and survives reopening the cache', () => {
    const db = openDb(':memory:')
    const cache = createStepCache(db)
    const key = stepKey('p', 'COPY a /a', ['a=hash'])
    expect(cache.get(key)).toBeUndefined()
    const value = { descriptor: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256Digest('blob'), size: 4 }, diffId: sha256Digest('tar') }
    cache.put(key, value)
    expect(createStepCache(db).get(key)).toEqual(value)
    db.close()
  })
})
