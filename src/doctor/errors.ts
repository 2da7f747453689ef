/**
 * Errors of the node checks, apart from the checks so that the CLI's error
 * table can name them without loading the content store.
 */

/** The data dir could not be created or made private (owned by someone else, read-only mount...). */
export class DataDirError extends Error {
  static override readonly name = 'DataDirError'
  override readonly name = DataDirError.name
  readonly code = 'ERR_DATA_DIR'
  readonly path: string
  constructor (path: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.path = path
  }
}
