/**
 * Errors of the build context filter. Callers branch on `name`, never on
 * the message text.
 */

/**
 * A line of an ignore file is not a valid pattern (an unclosed `[`, a
 * trailing `\`, a lone `!`): Docker refuses the build too. `file` and `line`
 * say where, as recipe errors do.
 */
export class IgnorePatternError extends Error {
  static override readonly name = 'IgnorePatternError'
  override readonly name = IgnorePatternError.name
  readonly code = 'ERR_IGNORE_PATTERN'
  readonly file: string
  readonly line: number
  constructor (file: string, line: number, detail: string) {
    super(`${file}:${line}: ${detail}`)
    this.file = file
    this.line = line
  }
}
