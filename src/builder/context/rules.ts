/**
 * An ignore file's patterns as one decision per path (terms and pattern
 * syntax in ./patterns.ts): the last pattern matching the path or one of its
 * parent dirs decides, so `docs` excludes `docs/a.md` and a later
 * `!docs/README.md` takes that one file back.
 */
import { IgnorePatternError } from './errors.ts'
import { cleanPath, compilePattern, PatternSyntaxError } from './patterns.ts'
import type { IgnorePattern } from './patterns.ts'

export interface IgnoreRules {
  /** The file the patterns came from, for messages; undefined when there was none. */
  readonly file: string | undefined
  readonly patterns: readonly IgnorePattern[]
  /** Whether a path (context-relative, `/`-separated, clean) is excluded. */
  excludes: (path: string) => boolean
  /**
   * Whether an exception might take back something strictly under this
   * excluded dir, so a walk must look inside it. False lets a walk skip
   * a `node_modules` without reading it.
   */
  mayIncludeUnder: (dir: string) => boolean
}

const BOM = '\uFEFF'

/** The rules of an ignore file's text. Throws IgnorePatternError at the first malformed line. */
export function parseIgnoreFile (text: string, file = '.dockerignore'): IgnoreRules {
  const patterns: IgnorePattern[] = []
  const lines = (text.startsWith(BOM) ? text.slice(1) : text).split('\n')
  for (const [i, raw] of lines.entries()) {
    if (raw.startsWith('#')) continue
    let line = raw.trim()
    if (line === '') continue
    const exception = line.startsWith('!')
    if (exception) line = line.slice(1).trim()
    if (line === '') throw new IgnorePatternError(file, i + 1, 'a lone "!" excludes nothing back: write the path after it')
    line = cleanPath(line)
    if (line.length > 1 && line.startsWith('/')) line = line.slice(1)
    try {
      patterns.push(compilePattern(line, exception))
    } catch (err) {
      if (err instanceof PatternSyntaxError) throw new IgnorePatternError(file, i + 1, `${err.message} in ${JSON.stringify(raw.trim())}`)
      throw err
    }
  }
  return rulesOf(patterns, file)
}

/** Nothing excluded: a context used as it is (an agent's, filtered when it was packed). */
export const NO_IGNORE_RULES: IgnoreRules = rulesOf([], undefined)

function rulesOf (patterns: readonly IgnorePattern[], file: string | undefined): IgnoreRules {
  const exceptions = patterns.filter(p => p.exception)
  return {
    file,
    patterns,
    excludes: (path) => {
      const parts = path.split('/')
      const parents = parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'))
      let excluded = false
      for (const p of patterns) {
        // Only a pattern that would flip the answer needs testing.
        if (p.exception !== excluded) continue
        if (p.matches(path) || parents.some(d => p.matches(d))) excluded = !p.exception
      }
      return excluded
    },
    mayIncludeUnder: (dir) => {
      const below = `${dir}/`
      return exceptions.some(p => p.lead === undefined || p.lead.startsWith(below) || below.startsWith(p.lead))
    }
  }
}
