/**
 * Opening the database. The file is created 0600 (and its dir 0700) before
 * sqlite opens it: sqlite would create it 0644 less the umask, and gives its
 * -wal and -shm files the database file's own mode, so all three stay
 * private to the owner (docs/security.md).
 */
import { closeSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../util/fs.ts'
import { BUSY_TIMEOUT_MS } from './constants.ts'
import type { KilnDb } from './index.ts'
import { createMigrate } from './migrations.ts'
import { createTransaction } from './transaction.ts'

/** `path` is the database file, or `:memory:` for a database that lives as long as the handle (tests). */
export function openDb (path: string): KilnDb {
  if (path !== ':memory:') {
    mkdirSync(dirname(path), { recursive: true, mode: PRIVATE_DIR_MODE })
    closeSync(openSync(path, 'a', PRIVATE_FILE_MODE))
  }
  const sql = new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS })
  // WAL: readers do not wait for the writer, so processes sharing the data
  // dir read while one writes. NORMAL under WAL stays consistent after a
  // crash; a power loss may lose only the last commits.
  sql.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;')
  const transaction = createTransaction(sql)
  const migrate = createMigrate(sql, transaction)
  return { sql, migrate, transaction, close: () => { sql.close() } }
}
