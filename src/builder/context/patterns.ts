/**
 * Ignore-file patterns with Docker's meaning (moby's patternmatcher and
 * ignorefile, which BuildKit and the classic builder both use).
 *
 * Terms: a *path* is context-relative with `/` separators and no `./`
 * (`src/main.go`); a *pattern* is one cleaned line of an ignore file; an
 * *exception* is a pattern written with a leading `!`; a path is *excluded*
 * when the last pattern that matches it, or one of its parent dirs, is not an
 * exception.
 *
 * Reading a file: a UTF-8 BOM is dropped; a line whose first character is
 * `#` is a comment (` # x`, with a space first, is a pattern, as in Docker);
 * surrounding white space is trimmed; `!` marks an exception; the rest is
 * cleaned like Go's filepath.Clean (`./a//b/` is `a/b`, so a trailing `/`
 * does not restrict a pattern to dirs) and one leading `/` is dropped.
 *
 * Matching: `*` is any run of characters but `/`, `?` one character but
 * `/`, `[a-z]` / `[^a-z]` a class (`\` escapes inside it), `\x` the
 * character x, `**` any number of dirs (`**\/` eats its slash; a trailing
 * `**` matches everything below). Two of Docker's shortcuts are kept because
 * they decide what Docker excludes: a pattern starting with `**` and
 * otherwise literal matches by suffix (`**.go` excludes `main.go`), and one
 * ending in `**` and otherwise literal by prefix. Classes are read as Go's
 * filepath.Match reads them (its validation refuses what Docker refuses);
 * `[!a]` is the class of `!` and `a`, not a negation, as in Docker.
 */

/** How a pattern matches, as patternmatcher decides it. */
type MatchKind = 'exact' | 'prefix' | 'suffix' | 'regexp'

export interface IgnorePattern {
  /** The cleaned pattern, without its `!`. */
  readonly text: string
  readonly exception: boolean
  /** Whether the pattern matches this path itself (parent dirs are the caller's business). */
  matches: (path: string) => boolean
  /**
   * The literal text every path it matches starts with; undefined when the
   * pattern can match anywhere (`**` first). Lets a walk skip an excluded
   * dir that no exception can reach into.
   */
  readonly lead: string | undefined
}

/** Refusal of a malformed pattern; the file reader adds where it was. */
export class PatternSyntaxError extends Error {
  static override readonly name = 'PatternSyntaxError'
  override readonly name = PatternSyntaxError.name
}

const REGEX_SYNTAX = /[\\^$.*+?()[\]{}|/]/

function literal (ch: string): string {
  return REGEX_SYNTAX.test(ch) ? `\\${ch}` : ch
}

/** The code point at chars[j], for a class bound; `\` escapes the next one, as in filepath.Match. */
function classChar (chars: readonly string[], j: number): { cp: number, next: number } {
  const escaped = chars[j] === '\\'
  if (escaped) j++
  const c = chars[j]
  if (c === undefined) throw new PatternSyntaxError('unclosed character class')
  if (!escaped && (c === '-' || c === ']')) throw new PatternSyntaxError(`unescaped ${c} in a character class`)
  if (chars[j + 1] === undefined) throw new PatternSyntaxError('unclosed character class')
  return { cp: c.codePointAt(0) as number, next: j + 1 }
}

/** `[...]` starting after the `[`: the JS class and where the pattern goes on. */
function readClass (chars: readonly string[], start: number): { re: string, next: number } {
  let j = start
  const negated = chars[j] === '^'
  if (negated) j++
  let ranges = ''
  for (let n = 0; ; n++) {
    if (chars[j] === ']' && n > 0) return { re: `[${negated ? '^' : ''}${ranges}]`, next: j + 1 }
    const lo = classChar(chars, j)
    let hi = lo
    j = lo.next
    if (chars[j] === '-') {
      hi = classChar(chars, j + 1)
      j = hi.next
    }
    if (hi.cp < lo.cp) throw new PatternSyntaxError('character class range out of order')
    ranges += `\\u{${lo.cp.toString(16)}}-\\u{${hi.cp.toString(16)}}`
  }
}

/** Compiles one cleaned pattern (no `!`). Throws PatternSyntaxError when Docker would refuse it. */
export function compilePattern (text: string, exception: boolean): IgnorePattern {
  const chars = Array.from(text)
  let re = '^'
  let kind: MatchKind = 'exact'
  let leadEnd: number | undefined
  for (let token = 0, j = 0; j < chars.length; token++) {
    const at = j
    const ch = chars[j++] as string
    if (ch === '*' || ch === '?' || ch === '[' || ch === '\\') leadEnd ??= at
    if (ch === '*' && chars[j] === '*') {
      j++
      if (chars[j] === '/') j++
      if (j < chars.length) {
        re += '(?:.*/)?'
        kind = 'regexp'
      } else if (kind === 'exact') {
        kind = 'prefix'
      } else {
        re += '.*'
        kind = 'regexp'
      }
      if (token === 0) kind = 'suffix'
    } else if (ch === '*') {
      re += '[^/]*'
      kind = 'regexp'
    } else if (ch === '?') {
      re += '[^/]'
      kind = 'regexp'
    } else if (ch === '\\') {
      const next = chars[j++]
      if (next === undefined) throw new PatternSyntaxError('a pattern cannot end with \\')
      re += literal(next)
      kind = 'regexp'
    } else if (ch === '[') {
      const cls = readClass(chars, j)
      re += cls.re
      j = cls.next
      kind = 'regexp'
    } else {
      re += literal(ch)
    }
  }
  const lead = kind === 'suffix' ? undefined : chars.slice(0, leadEnd).join('')
  const base = { text, exception, lead }
  switch (kind) {
    case 'exact': return { ...base, matches: path => path === text }
    case 'prefix': {
      const prefix = text.slice(0, -2)
      return { ...base, matches: path => path.startsWith(prefix) }
    }
    case 'suffix': {
      const suffix = text.slice(2)
      return { ...base, matches: path => path.endsWith(suffix) || (suffix.startsWith('/') && path === suffix.slice(1)) }
    }
    case 'regexp': {
      const compiled = new RegExp(`${re}$`, 'u')
      return { ...base, matches: path => compiled.test(path) }
    }
  }
}

/** Go's filepath.Clean for `/` paths: no empty, `.` or inner `..` elements, no trailing `/`; `.` for nothing. */
export function cleanPath (path: string): string {
  const rooted = path.startsWith('/')
  const out: string[] = []
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..' && out.length > 0 && out[out.length - 1] !== '..') out.pop()
    else if (part !== '..' || !rooted) out.push(part)
  }
  const joined = out.join('/')
  return rooted ? `/${joined}` : joined === '' ? '.' : joined
}
