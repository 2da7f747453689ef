import { RecipeSyntaxError } from '../errors.ts'

export interface Directives {
  /** Escape character: '\\' (default) or '`'. */
  escape: string
  /** `# syntax=` value, recorded but not acted on (kiln is its own front-end). */
  syntax?: string
  /** Number of leading lines that were directives. */
  lines: number
}

const DIRECTIVE = /^#[ \t]*([A-Za-z][A-Za-z0-9_-]*)[ \t]*=[ \t]*(.*?)[ \t]*$/
const KNOWN = new Set(['syntax', 'escape', 'check'])

/**
 * Reads parser directives from the top of a Dockerfile. They stop at the
 * first line that is not a known directive (an instruction, an empty line, a
 * comment or an unknown directive, which is a comment).
 */
export function parseDirectives (lines: readonly string[], file: string): Directives {
  const result: Directives = { escape: '\\', lines: 0 }
  const seen = new Set<string>()
  for (const [i, line] of lines.entries()) {
    const m = DIRECTIVE.exec(line)
    const name = m?.[1]?.toLowerCase()
    if (m === null || name === undefined || !KNOWN.has(name)) break
    const value = m[2] ?? ''
    if (seen.has(name)) throw new RecipeSyntaxError({ file, line: i + 1 }, `only one ${name} parser directive can be used`)
    seen.add(name)
    if (name === 'escape') {
      if (value !== '\\' && value !== '`') {
        throw new RecipeSyntaxError({ file, line: i + 1 }, `invalid escape token '${value}'`, 'the escape character must be \\ or `')
      }
      result.escape = value
    } else if (name === 'syntax') {
      result.syntax = value
    }
    result.lines = i + 1
  }
  return result
}
