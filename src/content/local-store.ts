/**
 * The store a kiln data dir holds: blobs under `<dataDir>/store` (an OCI image
 * layout), and the database `<dataDir>/kiln.db` (src/db) for refs and every
 * module's records.
 */
import { join } from 'node:path'
import { DB_FILE, openDb } from '../db/index.ts'
import type { KilnDb } from '../db/index.ts'
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

/** The content store's dir in a data dir. */
export const STORE_DIR = 'store'

export async function openLocalStore (dataDir: string): Promise<LocalStore> {
  const content = await createFsContentStore({ root: join(dataDir, STORE_DIR) })
  const db = openDb(join(dataDir, DB_FILE))
  const refs = createRefStore(db)
  return { root: dataDir, content, db, refs, close: () => { db.close() } }
}
