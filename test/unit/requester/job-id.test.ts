import { describe, expect, it } from 'vitest'
import { newJobId } from '../../../src/requester/index.ts'

describe('newJobId', () => {
  it('gives 16-character base64url ids that never start with "-" (a CLI would read them as options)', () => {
    const ids = Array.from({ length: 5000 }, () => newJobId())
    // 5000 ids: ~78 would start with "-" if nothing prevented it.
    expect(ids.filter(id => id.startsWith('-'))).toEqual([])
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{15}$/)
    expect(new Set(ids).size).toBe(ids.length)
  })
})
