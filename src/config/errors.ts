/**
 * Errors of kiln's configuration, apart from the schema and loader so that
 * the CLI's error table can name them without loading zod.
 */

export class ConfigError extends Error {
  static override readonly name = 'ConfigError'
  override readonly name = ConfigError.name
  readonly code = 'ERR_CONFIG'
  constructor (message: string) { super(message) }
}
