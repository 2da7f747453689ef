/**
 * Errors of the build cache, one class per condition. Callers branch on
 * the class (`static name`), never on message text.
 */

/** A cache image cannot be made, fetched or imported: `mode=min` with no image, not a kiln cache, records that do not match its layers, an unsupported source. */
export class CacheImageError extends Error {
  static override readonly name = 'CacheImageError'
  override readonly name = CacheImageError.name
}
