/** Moved to src/db; this re-export goes once every importer uses src/db/index.ts. */
export { openDb } from '../db/index.ts'
export type { DatabaseSync, KilnDb } from '../db/index.ts'
