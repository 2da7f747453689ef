/**
 * src/db: the file is private from its creation, migrations run each step
 * once and all or nothing, a kiln.db written before src/db existed opens
 * unchanged, and transactions nest by joining.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DB_FILE, openDb } from '../../../src/db/index.ts'
import type { KilnDb } from '../../../src/db/index.ts'

let dir: string
const open: KilnDb[] = []
const openHere = (path = join(dir, DB_FILE)): KilnDb => { const db = openDb(path); open.push(db); return db }
const versions = (db: KilnDb): unknown[] => db.sql.prepare('SELECT module, version FROM kiln_migrations ORDER BY module').all().map(r => ({ ...r }))
const tables = (db: KilnDb): unknown[] => db.sql.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 't%' ORDER BY name").all().map(r => r.name)

beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'kiln-db-')) })
afterEach(() => {
  for (const db of open.splice(0)) if (db.sql.isOpen) db.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('openDb', () => {
  it('creates the dir 0700 and kiln.db with its -wal and -shm 0600, whatever the umask', () => {
    const old = process.umask(0)
    try {
      const db = openHere(join(dir, 'data', DB_FILE))
      db.migrate('t', ['CREATE TABLE t1 (x)', 'INSERT INTO t1 VALUES (1)'])
      expect(statSync(join(dir, 'data')).mode & 0o777).toBe(0o700)
      for (const f of [DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`]) expect([f, statSync(join(dir, 'data', f)).mode & 0o777]).toEqual([f, 0o600])
    } finally {
      process.umask(old)
    }
  })

  it('keeps the data in WAL mode with foreign keys on', () => {
    const db = openHere()
    expect(db.sql.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' })
    expect(db.sql.prepare('PRAGMA foreign_keys').get()).toEqual({ foreign_keys: 1 })
  })
})

describe('migrate', () => {
  it('runs each step once, and only the steps appended since', () => {
    const steps = ['CREATE TABLE t1 (x)', 'INSERT INTO t1 VALUES (1)']
    let db = openHere()
    db.migrate('a', steps)
    db.migrate('a', steps)
    expect(db.sql.prepare('SELECT count(*) AS n FROM t1').get()).toEqual({ n: 1 })
    db.close()
    db = openHere()
    db.migrate('a', [...steps, 'INSERT INTO t1 VALUES (2)'])
    db.migrate('b', ['CREATE TABLE t2 (y)'])
    expect(db.sql.prepare('SELECT x FROM t1 ORDER BY x').all().map(r => r.x)).toEqual([1, 2])
    expect(versions(db)).toEqual([{ module: 'a', version: 3 }, { module: 'b', version: 1 }])
  })

  it('applies a list all or nothing: a failing step undoes the ones before it and the version stays', () => {
    const db = openHere()
    db.migrate('a', ['CREATE TABLE t1 (x)'])
    expect(() => { db.migrate('a', ['CREATE TABLE t1 (x)', 'CREATE TABLE t2 (y)', 'NOT SQL']) }).toThrow()
    expect(tables(db)).toEqual(['t1'])
    expect(versions(db)).toEqual([{ module: 'a', version: 1 }])
  })

  it('opens a kiln.db written before src/db existed without running its steps again', () => {
    // The layout every existing data dir has: kiln_migrations (module, version) beside the tables.
    const old = new DatabaseSync(join(dir, DB_FILE))
    old.exec(`CREATE TABLE kiln_migrations (module TEXT PRIMARY KEY, version INTEGER NOT NULL);
      CREATE TABLE refs (repository TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (repository, tag));
      INSERT INTO refs VALUES ('app', 'v1');
      INSERT INTO kiln_migrations VALUES ('refs', 1);`)
    old.close()
    const db = openHere()
    db.migrate('refs', ['CREATE TABLE refs (repository TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (repository, tag))'])
    expect(db.sql.prepare('SELECT repository, tag FROM refs').all().map(r => ({ ...r }))).toEqual([{ repository: 'app', tag: 'v1' }])
    expect(versions(db)).toEqual([{ module: 'refs', version: 1 }])
  })

  it('sees the version another handle on the same file recorded', () => {
    const first = openHere()
    const second = openHere()
    first.migrate('a', ['CREATE TABLE t1 (x)'])
    second.migrate('a', ['CREATE TABLE t1 (x)', 'INSERT INTO t1 VALUES (1)'])
    expect(first.sql.prepare('SELECT count(*) AS n FROM t1').get()).toEqual({ n: 1 })
  })
})

describe('transaction', () => {
  it('commits on return and rolls back on throw', () => {
    const db = openHere()
    db.migrate('a', ['CREATE TABLE t1 (x)'])
    const add = db.sql.prepare('INSERT INTO t1 VALUES (?)')
    expect(db.transaction(() => { add.run(1); return 'done' })).toBe('done')
    expect(() => db.transaction(() => { add.run(2); throw new Error('stop') })).toThrow('stop')
    expect(db.sql.prepare('SELECT x FROM t1').all().map(r => r.x)).toEqual([1])
  })

  it('joins an outer transaction: the outer rollback undoes the inner writes', () => {
    const db = openHere()
    db.migrate('a', ['CREATE TABLE t1 (x)'])
    const add = db.sql.prepare('INSERT INTO t1 VALUES (?)')
    expect(() => db.transaction(() => {
      db.transaction(() => { add.run(1) })
      throw new Error('outer')
    })).toThrow('outer')
    expect(db.sql.prepare('SELECT count(*) AS n FROM t1').get()).toEqual({ n: 0 })
    db.transaction(() => { db.transaction(() => { add.run(2) }) })
    expect(db.sql.prepare('SELECT x FROM t1').all().map(r => r.x)).toEqual([2])
  })
})
