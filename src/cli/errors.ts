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

/**
 * Exit codes for errors thrown by the modules, by their `name`, so that a
 * command need not catch and rewrap each one.
 */
const BY_NAME: Record<string, ExitCode> = {
  NotFoundError: EXIT.notFound,
  DigestMismatchError: EXIT.verification,
  SizeMismatchError: EXIT.verification,
  BadSignatureError: EXIT.verification,
  UntrustedError: EXIT.verification,
  ExpiredError: EXIT.verification,
  NotYetValidError: EXIT.verification,
  ReplayError: EXIT.verification,
  WrongTypeError: EXIT.verification,
  UnknownVersionError: EXIT.verification,
  EnvelopeInvalidError: EXIT.verification,
  ReproducibilityError: EXIT.verification,
  ResultInvalidError: EXIT.verification,
  KeyFileError: EXIT.usage,
  PolicyFileError: EXIT.usage,
  NoOffersError: EXIT.network,
  BuilderLostError: EXIT.network,
  InvalidDigestError: EXIT.usage,
  ConfigError: EXIT.usage,
  DataDirError: EXIT.usage,
  IgnorePatternError: EXIT.usage,
  RecipeError: EXIT.usage,
  InvalidReferenceError: EXIT.usage,
  ManifestInvalidError: EXIT.verification,
  ManifestTooLargeError: EXIT.verification,
  ConfigInvalidError: EXIT.verification,
  LayoutInvalidError: EXIT.usage,
  ArchiveInvalidError: EXIT.usage,
  ReferenceInvalidError: EXIT.usage,
  PlatformInvalidError: EXIT.usage,
  PlatformNotFoundError: EXIT.notFound,
  BlobMissingError: EXIT.notFound,
  ImageNotFoundError: EXIT.notFound,
  SymlinkEscapeError: EXIT.verification,
  HardlinkTargetError: EXIT.verification,
  TarHeaderTooLargeError: EXIT.verification,
  TarInvalidError: EXIT.verification,
  LayerCompressionError: EXIT.verification,
  UnsafePathError: EXIT.verification,
  BuildStepError: EXIT.buildFailed,
  BuildError: EXIT.buildFailed,
  TimeoutError: EXIT.network,
  NoProvidersError: EXIT.network
}

export function exitCodeFor (err: unknown): ExitCode {
  if (err instanceof CliError) return err.exitCode
  if (err instanceof Error && BY_NAME[err.name] !== undefined) return BY_NAME[err.name] as ExitCode
  return EXIT.failure
}
