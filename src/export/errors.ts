/**
 * Errors of the exporters, one class per condition. Callers branch on `name`.
 */

/** An `--output` value that cannot be parsed or names unknown or bad keys. */
export class OutputSpecInvalidError extends Error {
  static override readonly name = 'OutputSpecInvalidError'
  override readonly name = OutputSpecInvalidError.name
  /** Every key found wrong, in the order given. */
  readonly keys: string[]
  constructor (message: string, keys: string[] = []) {
    super(message)
    this.keys = keys
  }
}

/** An output type whose machinery is not wired into this process (e.g. `type=kiln` without the peer network). */
export class ExporterUnavailableError extends Error {
  static override readonly name = 'ExporterUnavailableError'
  override readonly name = ExporterUnavailableError.name
}

/** The image cannot be written in the requested format (e.g. an index to docker-archive with no matching platform). */
export class ExportUnsupportedError extends Error {
  static override readonly name = 'ExportUnsupportedError'
  override readonly name = ExportUnsupportedError.name
}

/** An external (exec) exporter exited non-zero, was killed, or answered `ok: false`. */
export class ExecExporterFailedError extends Error {
  static override readonly name = 'ExecExporterFailedError'
  override readonly name = ExecExporterFailedError.name
  /** The last bytes the program wrote on stderr. */
  readonly stderrTail: string
  readonly exitCode: number | null
  constructor (message: string, stderrTail: string, exitCode: number | null) {
    super(stderrTail === '' ? message : `${message}\n--- exporter stderr (tail) ---\n${stderrTail}`)
    this.stderrTail = stderrTail
    this.exitCode = exitCode
  }
}

/** An external exporter ran past its time limit and was killed. */
export class ExecExporterTimeoutError extends Error {
  static override readonly name = 'ExecExporterTimeoutError'
  override readonly name = ExecExporterTimeoutError.name
}

/** An external exporter's stdout was not one valid result line, or was too large. */
export class ExecExporterProtocolError extends Error {
  static override readonly name = 'ExecExporterProtocolError'
  override readonly name = ExecExporterProtocolError.name
}

/** A static site's sidecar map exists but cannot be read. */
export class SiteStateInvalidError extends Error {
  static override readonly name = 'SiteStateInvalidError'
  override readonly name = SiteStateInvalidError.name
}

/** An object store refused a request. */
export class ObjectStoreError extends Error {
  static override readonly name = 'ObjectStoreError'
  override readonly name = ObjectStoreError.name
}
