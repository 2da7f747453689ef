import { afterEach, describe, expect, it } from 'vitest'
import { openDb } from '../../../src/db/index.ts'
import type { KilnDb } from '../../../src/db/index.ts'
import { createDbReplayCache, createMemoryReplayCache } from '../../../src/trust/index.ts'
import type { ReplayCache } from '../../../src/trust/index.ts'

const dbs: KilnDb[] = []
afterEach(() => { for (const d of dbs.splice(0)) d.close() })

const variants: Array<[string, (max: number) => ReplayCache]> = [
  ['memory', max => createMemoryReplayCache({ maxEntries: max })],
  ['sqlite', max => {
    const db = openDb(':memory:')
    dbs.push(db)
    return createDbReplayCache(db, { maxEntries: max })
  }]
]

describe.each(variants)('%s replay cache', (_name, make) => {
  const e = (nonce: string, issuedAt: number, keepUntil = issuedAt + 1000): { signer: string, nonce: string, issuedAt: number, keepUntil: number } =>
    ({ signer: 'peer', nonce, issuedAt, keepUntil })

  it('remembers a nonce while it is valid and forgets it after', () => {
    const c = make(100)
    expect(c.remember(e('a', 0), 0)).toBe('fresh')
    expect(c.remember(e('a', 0), 999)).toBe('replay')
    expect(c.remember({ ...e('a', 0), signer: 'other' }, 10)).toBe('fresh')
    expect(c.remember(e('a', 0), 1000)).toBe('fresh')
  })

  it('stays within its bound, dropping expired entries first', () => {
    const c = make(10)
    for (let i = 0; i < 10; i++) c.remember(e(`x${i}`, i, 50), 0)
    expect(c.remember(e('late', 100, 2000), 100)).toBe('fresh')
    expect(c.size()).toBe(1)
  })

  it('when forced to forget valid nonces, refuses anything issued at or before them', () => {
    const c = make(10)
    for (let i = 0; i < 10; i++) c.remember(e(`n${i}`, i, 10_000), 0)
    expect(c.remember(e('new', 100, 10_000), 1)).toBe('fresh')
    expect(c.size()).toBeLessThanOrEqual(10)
    // n0 was forgotten; replaying it must still fail.
    expect(c.remember(e('n0', 0, 10_000), 2)).toBe('too-old')
    expect(c.remember(e('n9', 9, 10_000), 2)).toBe('replay')
    expect(c.remember(e('newer', 200, 10_000), 2)).toBe('fresh')
  })
})

describe('sqlite replay cache', () => {
  it('survives reopening the database', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const dir = await mkdtemp(join(tmpdir(), 'kiln-replay-'))
    try {
      const path = join(dir, 'kiln.db')
      let db = openDb(path)
      createDbReplayCache(db).remember({ signer: 's', nonce: 'n', issuedAt: 1, keepUntil: 5000 }, 1)
      db.close()
      db = openDb(path)
      expect(createDbReplayCache(db).remember({ signer: 's', nonce: 'n', issuedAt: 1, keepUntil: 5000 }, 2)).toBe('replay')
      db.close()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
