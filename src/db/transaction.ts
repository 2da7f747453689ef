/**
 * Transactions over one connection. A transaction opened inside another
 * joins it: sqlite has no nested BEGIN, and a module's helper that wraps its
 * own writes in a transaction must still work when its caller already holds
 * one (removing several refs at once, for example).
 */
import type { DatabaseSync } from 'node:sqlite'
import type { KilnDb } from './index.ts'

export function createTransaction (sql: DatabaseSync): KilnDb['transaction'] {
  let depth = 0
  return <T>(fn: () => T): T => {
    if (depth > 0) return fn()
    // IMMEDIATE takes the write lock now, so two processes that both read
    // then write wait for each other at BEGIN instead of one failing with
    // SQLITE_BUSY when it upgrades its read lock.
    sql.exec('BEGIN IMMEDIATE')
    depth++
    try {
      const out = fn()
      sql.exec('COMMIT')
      return out
    } catch (err) {
      sql.exec('ROLLBACK')
      throw err
    } finally {
      depth--
    }
  }
}
