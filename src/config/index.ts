/**
 * kiln's configuration: defaults, then kiln.yaml, then environment
 * (KILN_DATA_DIR, KILN_LOG_LEVEL, KILN_SANDBOX, SOURCE_DATE_EPOCH), then
 * command-line flags, each overriding the one before. Validated with zod; a
 * bad value is reported with the file, the key, the value and what was
 * expected.
 *
 * @example
 * ```ts
 * const config = await loadConfig({ file: flags.config, overrides: { dataDir: flags.dataDir } })
 * ```
 */
import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { ConfigError } from './errors.ts'
import { describeValue, formatIssues } from './issues.ts'
import { KilnConfigSchema } from './schema.ts'
import type { KilnConfig, KilnConfigInput } from './schema.ts'

export type { KilnConfig, KilnConfigInput }
export { ConfigError, KilnConfigSchema }
export { expectedText, formatIssues } from './issues.ts'

export interface LoadConfigOptions {
  /** Path of kiln.yaml; default $KILN_CONFIG, else none (defaults only). */
  file?: string
  /** Values from flags; they win over the file and the environment. */
  overrides?: Partial<{ dataDir: string, logLevel: string }>
  env?: NodeJS.ProcessEnv
}

/** `$XDG_DATA_HOME/kiln`, else `~/.local/share/kiln`. */
export function defaultDataDir (env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_DATA_HOME
  return xdg !== undefined && xdg !== '' ? join(xdg, 'kiln') : join(homedir(), '.local', 'share', 'kiln')
}

export async function loadConfig (options: LoadConfigOptions = {}): Promise<KilnConfig> {
  const env = options.env ?? process.env
  const file = options.file ?? (env.KILN_CONFIG !== undefined && env.KILN_CONFIG !== '' ? env.KILN_CONFIG : undefined)
  let raw: Record<string, unknown> = {}
  if (file !== undefined) {
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (err) {
      throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`)
    }
    // Loaded here, not at the top: most commands run without a kiln.yaml, and the parser is ~70 modules.
    const { parseDocument } = await import('yaml')
    const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true })
    if (doc.errors.length > 0) throw new ConfigError(`${file}: invalid YAML: ${doc.errors.map(e => e.message).join('; ')}`)
    const value: unknown = doc.toJS()
    if (value !== null && value !== undefined) {
      if (typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(`${file}: expected a mapping of settings at the top level, got ${describeValue(value)}`)
      raw = value as Record<string, unknown>
    }
  }
  const merged: Record<string, unknown> = { ...raw }
  const fromEnv: Record<string, string> = {}
  for (const setting of ENV_SETTINGS) {
    const text = env[setting.variable]
    const value = text === undefined || text === '' ? undefined : setting.parse === undefined ? text : setting.parse(text)
    if (value === undefined) continue
    const [section, key] = setting.key.split('.') as [string, string | undefined]
    if (key === undefined) merged[section] = value
    else if (merged[section] === undefined || isMapping(merged[section])) merged[section] = { ...(merged[section] as object | undefined), [key]: value }
    else continue
    fromEnv[setting.key] = setting.variable
  }
  for (const [k, v] of Object.entries(options.overrides ?? {})) if (v !== undefined) merged[k] = v

  const parsed = KilnConfigSchema.safeParse(merged)
  if (!parsed.success) throw new ConfigError(formatIssues(file ?? 'config', merged, parsed.error))
  const dataDir = resolve(parsed.data.dataDir ?? defaultDataDir(env))
  return { ...parsed.data, dataDir, ...(file !== undefined ? { configFile: resolve(file) } : {}), fromEnv }
}

/**
 * How a person names where a setting came from: the environment variable
 * that set it, else its key in kiln.yaml (`build.sandbox`).
 */
export function settingName (config: KilnConfig, key: string): string {
  return config.fromEnv?.[key] ?? key
}

const isMapping = (v: unknown): v is object => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * The environment variables that set a key (docs/configuration.md). No other
 * module reads them: they get the values from the config. SOURCE_DATE_EPOCH
 * that is not a whole number of seconds is ignored, as every kiln did before
 * it was read here.
 */
const ENV_SETTINGS: ReadonlyArray<{ variable: string, key: string, parse?: (text: string) => unknown }> = [
  { variable: 'KILN_DATA_DIR', key: 'dataDir' },
  { variable: 'KILN_LOG_LEVEL', key: 'logLevel' },
  { variable: 'KILN_SANDBOX', key: 'build.sandbox' },
  { variable: 'SOURCE_DATE_EPOCH', key: 'build.sourceDateEpoch', parse: text => /^\d+$/.test(text) ? Number(text) : undefined }
]
