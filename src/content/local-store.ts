/**
 * The store a kiln data dir holds: blobs under `<dataDir>/store` (an OCI image
 * layout), and `<dataDir>/kiln.db` for refs and every module's records.
 */
import { join } from 'node:path'
import { openDb } from './db.ts'
import type { KilnDb } from './db.ts'
import { createFsContentStore } from './fs-store.ts'
import type { ContentStore } from './index.ts'
import { createRefStore } from './refs.ts'
import type { RefStore } from './refs.ts'

export interface LocalStore {
  /** The data dir. */
  readonly root: string
  readonly content: ContentStore
  readonly db: KilnDb
  readonly refs: RefStore
  close: () => void
}

/** The content store's dir and the database's file in a data dir. */
export const STORE_DIR = 'store'
export const DB_FILE = 'kiln.db'

export async function openLocalStore (dataDir: string): Promise<LocalStore> {
  const content = await createFsContentStore({ root: join(dataDir, STORE_DIR) })
  const db = openDb(join(dataDir, DB_FILE))
  const refs = createRefStore(db)
  return { root: dataDir, content, db, refs, close: () => { db.close() } }
}
