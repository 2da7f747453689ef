/**
 * Errors thrown by the builder. Callers branch on `name` (or `code`), never
 * on the message text.
 */
import type { SourceLoc } from '../recipe/ir.ts'

function where (source: SourceLoc | undefined): string {
  return source === undefined ? '' : `${source.file}:${source.line}: `
}

/** No sandbox driver works on this node, or the one asked for does not. */
export class SandboxUnavailableError extends Error {
  static override readonly name = 'SandboxUnavailableError'
  override readonly name = SandboxUnavailableError.name
  readonly code = 'ERR_SANDBOX_UNAVAILABLE'
  constructor (message: string) { super(message) }
}

/** The sandbox itself failed (bad root, mount refused), not the step's command. */
export class SandboxError extends Error {
  static override readonly name = 'SandboxError'
  override readonly name = SandboxError.name
  readonly code = 'ERR_SANDBOX'
  constructor (message: string) { super(message) }
}

/**
 * A RUN step exited non-zero, was killed, or timed out. `hint`, when kiln
 * can tell what went wrong (a step without network that tried to resolve a
 * name), says what to do; the message ends with it in parentheses.
 */
export class StepFailedError extends Error {
  static override readonly name = 'StepFailedError'
  override readonly name = StepFailedError.name
  readonly code = 'ERR_STEP_FAILED'
  readonly source: SourceLoc
  readonly exitCode: number | null
  readonly output: string
  readonly hint?: string
  constructor (source: SourceLoc, detail: string, exitCode: number | null, output: string, hint?: string) {
    super(`${where(source)}${detail}${hint === undefined ? '' : ` (${hint})`}`)
    this.source = source
    this.exitCode = exitCode
    this.output = output
    if (hint !== undefined) this.hint = hint
  }
}

/** A COPY/ADD source is missing or resolves outside the context or stage root. */
export class CopySourceError extends Error {
  static override readonly name = 'CopySourceError'
  override readonly name = CopySourceError.name
  readonly code = 'ERR_COPY_SOURCE'
  readonly source: SourceLoc | undefined
  constructor (message: string, source?: SourceLoc) {
    super(`${where(source)}${message}`)
    this.source = source
  }
}

/** A base image cannot be found or read. */
export class BaseImageError extends Error {
  static override readonly name = 'BaseImageError'
  override readonly name = BaseImageError.name
  readonly code = 'ERR_BASE_IMAGE'
  readonly source: SourceLoc | undefined
  constructor (message: string, source?: SourceLoc) {
    super(`${where(source)}${message}`)
    this.source = source
  }
}

/** The plan asks for something this builder cannot do (RUN for a platform without an emulator...). */
export class UnsupportedStepError extends Error {
  static override readonly name = 'UnsupportedStepError'
  override readonly name = UnsupportedStepError.name
  readonly code = 'ERR_UNSUPPORTED_STEP'
  readonly source: SourceLoc | undefined
  constructor (message: string, source?: SourceLoc) {
    super(`${where(source)}${message}`)
    this.source = source
  }
}

/** A RUN mounts a secret with `required` that the build was not given (`kiln build --secret`). */
export class SecretNotFoundError extends Error {
  static override readonly name = 'SecretNotFoundError'
  override readonly name = SecretNotFoundError.name
  readonly code = 'ERR_SECRET_NOT_FOUND'
  readonly source: SourceLoc
  constructor (message: string, source: SourceLoc) {
    super(`${where(source)}${message}`)
    this.source = source
  }
}

/**
 * A step the builder itself fetches for (`ADD <url>`, `ADD <git>`) needs the
 * network and the build's network mode is `none` (`kiln build
 * --network=default`, the agent's `agent.allowNetwork`). RUN steps never
 * throw it: under `none` they simply run offline.
 */
export class NetworkNotAllowedError extends Error {
  static override readonly name = 'NetworkNotAllowedError'
  override readonly name = NetworkNotAllowedError.name
  readonly code = 'ERR_NETWORK_NOT_ALLOWED'
  readonly source: SourceLoc
  constructor (source: SourceLoc, message: string) {
    super(`${where(source)}${message}`)
    this.source = source
  }
}

/**
 * An `ADD <url>` or `ADD <git>` source could not be fetched: the server
 * answered with an error, the download was too large or too slow, the bytes
 * do not match `--checksum`, git failed or the ref does not exist.
 */
export class RemoteSourceError extends Error {
  static override readonly name = 'RemoteSourceError'
  override readonly name = RemoteSourceError.name
  readonly code = 'ERR_REMOTE_SOURCE'
  readonly source: SourceLoc | undefined
  constructor (message: string, source?: SourceLoc) {
    super(`${where(source)}${message}`)
    this.source = source
  }
}

/** `COPY --chown` / `ADD --chown` names a user or group the stage's /etc/passwd or /etc/group lacks, or is malformed. */
export class UnknownOwnerError extends Error {
  static override readonly name = 'UnknownOwnerError'
  override readonly name = UnknownOwnerError.name
  readonly code = 'ERR_UNKNOWN_OWNER'
  readonly source: SourceLoc | undefined
  constructor (message: string, source?: SourceLoc) {
    super(`${where(source)}${message}`)
    this.source = source
  }
}
