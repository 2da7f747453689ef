/**
 * Errors thrown by the OCI module, one class per condition. Callers branch on
 * `name` (or `code`), never on the message text. Errors about a tar entry
 * carry the entry's name in `entry`.
 */

export class ManifestInvalidError extends Error {
  static override readonly name = 'ManifestInvalidError'
  override readonly name = ManifestInvalidError.name
  readonly code = 'ERR_MANIFEST_INVALID'
  constructor (message: string) { super(message) }
}

export class ManifestTooLargeError extends Error {
  static override readonly name = 'ManifestTooLargeError'
  override readonly name = ManifestTooLargeError.name
  readonly code = 'ERR_MANIFEST_TOO_LARGE'
  readonly size: number
  readonly limit: number
  constructor (size: number, limit: number, what = 'manifest') {
    super(`${what} is ${size} bytes, larger than the limit of ${limit}`)
    this.size = size
    this.limit = limit
  }
}

export class ConfigInvalidError extends Error {
  static override readonly name = 'ConfigInvalidError'
  override readonly name = ConfigInvalidError.name
  readonly code = 'ERR_CONFIG_INVALID'
  constructor (message: string) { super(message) }
}

export class UnsupportedMediaTypeError extends Error {
  static override readonly name = 'UnsupportedMediaTypeError'
  override readonly name = UnsupportedMediaTypeError.name
  readonly code = 'ERR_UNSUPPORTED_MEDIA_TYPE'
  readonly mediaType: string
  constructor (mediaType: string, context: string) {
    super(`unsupported media type ${JSON.stringify(mediaType)} ${context}`)
    this.mediaType = mediaType
  }
}

export class ReferenceInvalidError extends Error {
  static override readonly name = 'ReferenceInvalidError'
  override readonly name = ReferenceInvalidError.name
  readonly code = 'ERR_REFERENCE_INVALID'
  constructor (message: string) { super(message) }
}

export class PlatformInvalidError extends Error {
  static override readonly name = 'PlatformInvalidError'
  override readonly name = PlatformInvalidError.name
  readonly code = 'ERR_PLATFORM_INVALID'
  constructor (message: string) { super(message) }
}

/** No entry of an index matches the wanted platform. */
export class PlatformNotFoundError extends Error {
  static override readonly name = 'PlatformNotFoundError'
  override readonly name = PlatformNotFoundError.name
  readonly code = 'ERR_PLATFORM_NOT_FOUND'
  readonly platform: string
  readonly available: string[]
  constructor (platform: string, available: string[]) {
    super(`no manifest for platform ${platform}; the index has ${available.length === 0 ? 'no platform entries' : available.join(', ')}`)
    this.platform = platform
    this.available = available
  }
}

/** A blob referenced by a manifest, index or layout is not available. */
export class BlobMissingError extends Error {
  static override readonly name = 'BlobMissingError'
  override readonly name = BlobMissingError.name
  readonly code = 'ERR_BLOB_MISSING'
  readonly digest: string
  readonly referencedBy: string
  constructor (digest: string, referencedBy: string) {
    super(`blob ${digest} is missing (referenced by ${referencedBy})`)
    this.digest = digest
    this.referencedBy = referencedBy
  }
}

export class LayoutInvalidError extends Error {
  static override readonly name = 'LayoutInvalidError'
  override readonly name = LayoutInvalidError.name
  readonly code = 'ERR_LAYOUT_INVALID'
  constructor (message: string) { super(message) }
}

export class ArchiveInvalidError extends Error {
  static override readonly name = 'ArchiveInvalidError'
  override readonly name = ArchiveInvalidError.name
  readonly code = 'ERR_ARCHIVE_INVALID'
  constructor (message: string) { super(message) }
}

/** No image in a layout or archive carries the requested name. */
export class ImageNotFoundError extends Error {
  static override readonly name = 'ImageNotFoundError'
  override readonly name = ImageNotFoundError.name
  readonly code = 'ERR_IMAGE_NOT_FOUND'
  constructor (message: string) { super(message) }
}

// ---- tar layers ----

/** A tar entry whose path is absolute after normalization or climbs out of the root with `..`. */
export class UnsafePathError extends Error {
  static override readonly name = 'UnsafePathError'
  override readonly name = UnsafePathError.name
  readonly code = 'ERR_UNSAFE_PATH'
  readonly entry: string
  constructor (entry: string, reason: string) {
    super(`refusing tar entry ${JSON.stringify(entry)}: ${reason}`)
    this.entry = entry
  }
}

/** Writing the entry would go through a symlink (a parent component, or the entry itself). */
export class SymlinkEscapeError extends Error {
  static override readonly name = 'SymlinkEscapeError'
  override readonly name = SymlinkEscapeError.name
  readonly code = 'ERR_SYMLINK_ESCAPE'
  readonly entry: string
  constructor (entry: string, reason: string) {
    super(`refusing tar entry ${JSON.stringify(entry)}: ${reason}`)
    this.entry = entry
  }
}

/** A hardlink whose target is outside the root, missing, or not a regular file. */
export class HardlinkTargetError extends Error {
  static override readonly name = 'HardlinkTargetError'
  override readonly name = HardlinkTargetError.name
  readonly code = 'ERR_HARDLINK_TARGET'
  readonly entry: string
  constructor (entry: string, reason: string) {
    super(`refusing hardlink ${JSON.stringify(entry)}: ${reason}`)
    this.entry = entry
  }
}

/** A PAX header, GNU long name or path longer than the limits in constants.ts. */
export class TarHeaderTooLargeError extends Error {
  static override readonly name = 'TarHeaderTooLargeError'
  override readonly name = TarHeaderTooLargeError.name
  readonly code = 'ERR_TAR_HEADER_TOO_LARGE'
  readonly entry: string
  constructor (entry: string, reason: string) {
    super(`tar header too large at ${JSON.stringify(entry)}: ${reason}`)
    this.entry = entry
  }
}

/** The tar stream is malformed: bad checksum, bad number field, ends inside an entry. */
export class TarInvalidError extends Error {
  static override readonly name = 'TarInvalidError'
  override readonly name = TarInvalidError.name
  readonly code = 'ERR_TAR_INVALID'
  readonly entry: string
  constructor (entry: string, reason: string) {
    super(`invalid tar stream${entry === '' ? '' : ` at ${JSON.stringify(entry)}`}: ${reason}`)
    this.entry = entry
  }
}

/** A tar entry type kiln does not handle (sparse files, unknown types). */
export class UnsupportedEntryError extends Error {
  static override readonly name = 'UnsupportedEntryError'
  override readonly name = UnsupportedEntryError.name
  readonly code = 'ERR_UNSUPPORTED_ENTRY'
  readonly entry: string
  constructor (entry: string, reason: string) {
    super(`unsupported tar entry ${JSON.stringify(entry)}: ${reason}`)
    this.entry = entry
  }
}

/** The compressed stream is corrupt or truncated. */
export class LayerCompressionError extends Error {
  static override readonly name = 'LayerCompressionError'
  override readonly name = LayerCompressionError.name
  readonly code = 'ERR_LAYER_COMPRESSION'
  constructor (message: string, options?: { cause?: unknown }) { super(message, options) }
}

/** A file changed size while it was being written into a layer. */
export class SourceChangedError extends Error {
  static override readonly name = 'SourceChangedError'
  override readonly name = SourceChangedError.name
  readonly code = 'ERR_SOURCE_CHANGED'
  readonly path: string
  constructor (path: string, reason: string) {
    super(`${path} changed while it was written into a layer: ${reason}`)
    this.path = path
  }
}

/** A layer's uncompressed content does not hash to the diffID its image config lists. */
export class DiffIdMismatchError extends Error {
  static override readonly name = 'DiffIdMismatchError'
  override readonly name = DiffIdMismatchError.name
  readonly code = 'ERR_DIFF_ID_MISMATCH'
  readonly layer: string
  constructor (layer: string, expected: string, actual: string) {
    super(`layer ${layer}: uncompressed content hashes to ${actual}, the image config says ${expected}`)
    this.layer = layer
  }
}
