/**
 * The store's database: one node:sqlite file per data dir, in WAL mode, that
 * every module keeps its records in (refs, step cache, jobs, pins, leases).
 *
 * Each module owns its tables: it calls `migrate(module, steps)` with an
 * ordered list of SQL scripts, and only the steps not yet applied run, each in
 * a transaction. Modules never touch each other's tables.
 *
 * The file is created 0600 before sqlite opens it: sqlite would create it
 * 0644 less the umask, and gives its -wal and -shm files the database
 * file's own mode.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../util/fs.ts'

export type { DatabaseSync }

export interface KilnDb {
  readonly sql: DatabaseSync
  /** Applies the steps of `module` not applied yet, in order. Safe to call on every start. */
  migrate: (module: string, steps: readonly string[]) => void
  /** Runs fn in a transaction (BEGIN IMMEDIATE), committing on return and rolling back on throw. */
  transaction: <T>(fn: () => T) => T
  close: () => void
}

export function openDb (path: string): KilnDb {
  if (path !== ':memory:') {
    mkdirSync(dirname(path), { recursive: true, mode: PRIVATE_DIR_MODE })
    closeSync(openSync(path, 'a', PRIVATE_FILE_MODE))
  }
  const sql = new DatabaseSync(path, { timeout: 10_000 })
  sql.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;')
  sql.exec('CREATE TABLE IF NOT EXISTS kiln_migrations (module TEXT PRIMARY KEY, version INTEGER NOT NULL)')

  let depth = 0
  const transaction = <T>(fn: () => T): T => {
    if (depth > 0) return fn()
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

  const migrate = (module: string, steps: readonly string[]): void => {
    transaction(() => {
      const row = sql.prepare('SELECT version FROM kiln_migrations WHERE module = ?').get(module) as { version: number } | undefined
      const from = row?.version ?? 0
      for (let i = from; i < steps.length; i++) sql.exec(steps[i] as string)
      if (steps.length > from) {
        sql.prepare('INSERT INTO kiln_migrations (module, version) VALUES (?, ?) ON CONFLICT(module) DO UPDATE SET version = excluded.version').run(module, steps.length)
      }
    })
  }

  return { sql, migrate, transaction, close: () => { sql.close() } }
}
