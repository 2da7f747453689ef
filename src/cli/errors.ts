/**
 * CliError: an error a command throws for the person at the terminal, with
 * the exit code and hint it decides. Errors of the modules need no wrapping:
 * main.ts ends on them through the table of ./error-exits.ts.
 */
import { EXIT } from './exit-codes.ts'
import type { ExitCode } from './exit-codes.ts'

export interface CliErrorOptions {
  exitCode?: ExitCode
  /** What the user can do about it, printed on its own line. */
  hint?: string
  cause?: unknown
}

/** An error meant for the person at the terminal: a message, a hint, an exit code. */
export class CliError extends Error {
  static override readonly name = 'CliError'
  override readonly name = CliError.name
  readonly exitCode: ExitCode
  readonly hint?: string
  constructor (message: string, options: CliErrorOptions = {}) {
    super(message, { cause: options.cause })
    this.exitCode = options.exitCode ?? EXIT.failure
    if (options.hint !== undefined) this.hint = options.hint
  }
}
