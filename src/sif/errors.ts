/**
 * Errors of the SIF module, one class per condition. Callers branch on
 * `name`, never on the message text.
 */

/** The bytes are not a SIF this module reads: bad magic, unknown version, a field out of range, truncated. */
export class SifInvalidError extends Error {
  static override readonly name = 'SifInvalidError'
  override readonly name = SifInvalidError.name
}

/** The SIF has no primary system partition in squashfs, so it cannot be a base image. */
export class SifNoRootPartitionError extends Error {
  static override readonly name = 'SifNoRootPartitionError'
  override readonly name = SifNoRootPartitionError.name
}

/** More data objects than the descriptor capacity, a name too long, and other things a SIF cannot hold. */
export class SifLimitError extends Error {
  static override readonly name = 'SifLimitError'
  override readonly name = SifLimitError.name
}

/** mksquashfs or unsquashfs is missing, failed or was killed. */
export class SquashfsToolError extends Error {
  static override readonly name = 'SquashfsToolError'
  override readonly name = SquashfsToolError.name
  /** The last bytes the tool wrote on stderr. */
  readonly stderrTail: string
  constructor (message: string, stderrTail = '') {
    super(stderrTail === '' ? message : `${message}: ${stderrTail}`)
    this.stderrTail = stderrTail
  }
}
