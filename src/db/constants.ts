/**
 * Fixed names and limits of the database module. The file name and the
 * migrations table are part of every existing data dir: changing either
 * would leave those data dirs' records behind.
 */

/** The database's file in a data dir: `<dataDir>/kiln.db`, beside sqlite's `-wal` and `-shm` files. */
export const DB_FILE = 'kiln.db'

/**
 * How long a statement waits for another process's lock before failing
 * with SQLITE_BUSY. Several kiln processes share one data dir (an agent, a
 * gateway, a `kiln build` run by hand), and a write transaction of one can
 * hold the lock for a while.
 */
export const BUSY_TIMEOUT_MS = 10_000
