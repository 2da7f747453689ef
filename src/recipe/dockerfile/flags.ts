import { RecipeSyntaxError, UnsupportedFeatureError } from '../errors.ts'
import type { SourceLoc } from '../ir.ts'

export interface FlagSpec {
  /** Flags taking a value (`--name=value`). */
  values?: readonly string[]
  /** Flags taking a value that may be given more than once (`--exclude=a --exclude=b`). */
  repeated?: readonly string[]
  /** Flags without value (`--name`, or `--name=true|false`). */
  bools?: readonly string[]
  /** Flags kiln refuses, with the reason. */
  unsupported?: Readonly<Record<string, string>>
}

export interface ParsedFlags {
  values: Map<string, string>
  bools: Set<string>
  /** Values of `repeated` flags, in order. */
  repeated: Map<string, string[]>
  /** The arguments after the flags, as written. */
  rest: string
}

/**
 * Reads the `--flag[=value]` words at the start of an instruction's
 * arguments (BuildKit's BFlags). Unknown flags are errors, and so are the
 * ones kiln does not support, named in the message.
 */
export function parseFlags (args: string, spec: FlagSpec, instruction: string, loc: SourceLoc): ParsedFlags {
  const values = new Map<string, string>()
  const bools = new Set<string>()
  const repeated = new Map<string, string[]>()
  let rest = args
  for (;;) {
    rest = rest.trimStart()
    if (!rest.startsWith('--')) break
    const m = /^--([^\s=]*)(=(\S*))?(\s|$)/.exec(rest)
    const name = m?.[1] ?? ''
    if (m === null || name === '') throw new RecipeSyntaxError(loc, `${instruction}: malformed flag in '${rest.split(/\s/)[0] ?? ''}'`)
    rest = rest.slice(m[0].length)
    const value = m[3]
    const reason = spec.unsupported?.[name]
    if (reason !== undefined) {
      throw new UnsupportedFeatureError(loc, `${instruction} --${name} is not supported`, reason)
    }
    const many = spec.repeated?.includes(name) === true
    if (many || spec.values?.includes(name) === true) {
      if (value === undefined || value === '') throw new RecipeSyntaxError(loc, `${instruction}: missing a value on flag --${name}`)
      if (many) repeated.set(name, [...(repeated.get(name) ?? []), value])
      else values.set(name, value)
    } else if (spec.bools?.includes(name) === true) {
      if (value === undefined || value === 'true') bools.add(name)
      else if (value === 'false') bools.delete(name)
      else throw new RecipeSyntaxError(loc, `${instruction}: expecting boolean value for flag --${name}, not: ${value}`)
    } else {
      throw new RecipeSyntaxError(loc, `${instruction}: unknown flag: --${name}`)
    }
  }
  return { values, bools, repeated, rest }
}
