/**
 * kiln's configuration: defaults, then kiln.yaml, then environment, then
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
import type { z } from 'zod'
import { ConfigError } from './errors.ts'
import { KilnConfigSchema } from './schema.ts'
import type { KilnConfig, KilnConfigInput } from './schema.ts'

export type { KilnConfig, KilnConfigInput }
export { ConfigError, KilnConfigSchema }

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

function describeValue (value: unknown): string {
  if (value === undefined) return 'nothing'
  const json = JSON.stringify(value)
  const text = json === undefined ? String(value) : json.length > 60 ? `${json.slice(0, 57)}...` : json
  const kind = Array.isArray(value) ? 'a list' : value === null ? 'null' : `a ${typeof value}`
  return `${text} (${kind})`
}

function valueAt (input: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v: unknown = input
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined
    v = (v as Record<PropertyKey, unknown>)[key]
  }
  return v
}

/** One line per problem: `where: key.path: got VALUE, expected WHAT`. */
export function formatIssues (where: string, input: unknown, error: z.ZodError): string {
  return error.issues.map(issue => {
    const key = issue.path.map(String).join('.')
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys.map(k => (key === '' ? k : `${key}.${k}`))
      return `${where}: unknown key${keys.length > 1 ? 's' : ''} ${keys.join(', ')} (check the spelling; see docs/configuration.md)`
    }
    return `${where}: ${key === '' ? '(top level)' : key}: got ${describeValue(valueAt(input, issue.path))}, expected ${issue.message}`
  }).join('\n')
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
  if (env.KILN_DATA_DIR !== undefined && env.KILN_DATA_DIR !== '') merged.dataDir = env.KILN_DATA_DIR
  if (env.KILN_LOG_LEVEL !== undefined && env.KILN_LOG_LEVEL !== '') merged.logLevel = env.KILN_LOG_LEVEL
  for (const [k, v] of Object.entries(options.overrides ?? {})) if (v !== undefined) merged[k] = v

  const parsed = KilnConfigSchema.safeParse(merged)
  if (!parsed.success) throw new ConfigError(formatIssues(file ?? 'config', merged, parsed.error))
  const dataDir = resolve(parsed.data.dataDir ?? defaultDataDir(env))
  return { ...parsed.data, dataDir, ...(file !== undefined ? { configFile: resolve(file) } : {}) }
}
