import { RecipeSyntaxError, UnsupportedFeatureError } from '../errors.ts'
import type { SourceLoc } from '../ir.ts'

export interface FlagSpec {
  /** Flags taking a value (`--name=value`). */
  values?: readonly string[]
  /** Flags taking a value that may be given more than once, kept in order. */
  lists?: readonly string[]
  /** Flags without value (`--name`, or `--name=true|false`). */
  bools?: readonly string[]
  /** Flags kiln refuses, with the reason. */
  unsupported?: Readonly<Record<string, string>>
}

export interface ParsedFlags {
  values: Map<string, string>
  lists: Map<string, string[]>
  bools: Set<string>
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
  const lists = new Map<string, string[]>()
  const bools = new Set<string>()
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
    if (spec.values?.includes(name) === true || spec.lists?.includes(name) === true) {
      if (value === undefined || value === '') throw new RecipeSyntaxError(loc, `${instruction}: missing a value on flag --${name}`)
      if (spec.lists?.includes(name) === true) lists.set(name, [...(lists.get(name) ?? []), value])
      else values.set(name, value)
    } else if (spec.bools?.includes(name) === true) {
      if (value === undefined || value === 'true') bools.add(name)
      else if (value === 'false') bools.delete(name)
      else throw new RecipeSyntaxError(loc, `${instruction}: expecting boolean value for flag --${name}, not: ${value}`)
    } else {
      throw new RecipeSyntaxError(loc, `${instruction}: unknown flag: --${name}`)
    }
  }
  return { values, lists, bools, rest }
}
