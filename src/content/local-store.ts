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

export async function openLocalStore (dataDir: string): Promise<LocalStore> {
  const content = await createFsContentStore({ root: join(dataDir, 'store') })
  const db = openDb(join(dataDir, 'kiln.db'))
  const refs = createRefStore(db)
  return { root: dataDir, content, db, refs, close: () => { db.close() } }
}
