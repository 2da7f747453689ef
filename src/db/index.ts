/**
 * The database: one node:sqlite file per data dir, `<dataDir>/kiln.db` in
 * WAL mode, that every module keeps its records in: refs, leases, pins and
 * blob access times (src/content), the step cache (src/builder), seen nonces
 * (src/trust), repository listings (src/gateway), the job journals
 * (src/requester, agent/jobs).
 *
 * Terms:
 * - migration list: the ordered SQL scripts (steps) that create and change
 *   one module's tables, under a name of its own (`refs`, `build-cache`...).
 * - version: how many steps of a list have run in this database, recorded
 *   in the table `kiln_migrations` (./migrations.ts).
 *
 * This module owns the handle and the migration mechanism; each module owns
 * its tables and their SQL. A module calls `migrate(name, steps)` before it
 * prepares statements on its tables, and never touches another's tables.
 * Steps are only appended, never edited or renumbered: an existing data dir
 * knows only how many it ran.
 *
 * @example
 * ```ts
 * const db = openDb(join(dataDir, DB_FILE))
 * db.migrate('notes', ['CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT NOT NULL)'])
 * const add = db.sql.prepare('INSERT INTO notes (id, body) VALUES (?, ?)')
 * db.transaction(() => { add.run('a', 'one'); add.run('b', 'two') })
 * db.close()
 * ```
 */
import type { DatabaseSync } from 'node:sqlite'

export type { DatabaseSync }
export { openDb } from './open.ts'
export { BUSY_TIMEOUT_MS, DB_FILE } from './constants.ts'

export interface KilnDb {
  /** The connection, for a module's own statements on its own tables. */
  readonly sql: DatabaseSync
  /**
   * Runs the steps of the list `module` that have not run in this database
   * yet, in order, in one transaction, and records the new version. Safe to
   * call on every start, and from several processes at once.
   */
  migrate: (module: string, steps: readonly string[]) => void
  /**
   * Runs fn in a transaction (BEGIN IMMEDIATE), committing on return and
   * rolling back on throw. Called inside another transaction, fn joins it:
   * the outer one commits or rolls back both.
   */
  transaction: <T>(fn: () => T) => T
  /** Closes the connection; the handle is unusable after. */
  close: () => void
}
