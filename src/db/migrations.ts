/**
 * The migration mechanism. The table `kiln_migrations` records, per
 * migration name, how many steps of that list have run (its version);
 * `migrate` runs the steps past that version, in order, and records the
 * new version, all in one transaction, so a crash leaves either every new
 * step applied or none.
 *
 * A data dir records only the count: a list's applied steps must never be
 * edited, reordered or removed, and a new step is appended. The table's name
 * and columns are part of every existing kiln.db.
 */
import type { DatabaseSync } from 'node:sqlite'
import { z } from 'zod'
import type { KilnDb } from './index.ts'

const VersionRow = z.object({ version: z.number().int().nonnegative() })

export function createMigrate (sql: DatabaseSync, transaction: KilnDb['transaction']): KilnDb['migrate'] {
  sql.exec('CREATE TABLE IF NOT EXISTS kiln_migrations (module TEXT PRIMARY KEY, version INTEGER NOT NULL)')
  const version = sql.prepare('SELECT version FROM kiln_migrations WHERE module = ?')
  const record = sql.prepare('INSERT INTO kiln_migrations (module, version) VALUES (?, ?) ON CONFLICT(module) DO UPDATE SET version = excluded.version')
  return (module, steps) => {
    transaction(() => {
      const row = version.get(module)
      const from = row === undefined ? 0 : VersionRow.parse(row).version
      for (let i = from; i < steps.length; i++) sql.exec(steps[i] as string)
      if (steps.length > from) record.run(module, steps.length)
    })
  }
}
