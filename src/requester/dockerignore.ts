/**
 * .dockerignore semantics, as Docker's patternmatcher: one pattern per line,
 * `#` comments, paths relative to the context root (a leading `/` is
 * dropped), `*` and `?` within one path segment, `[...]` classes, `**` for
 * any number of directories, `!` to re-include. The last pattern that
 * matches a path decides; a pattern that matches a directory matches
 * everything under it.
 */
import { posix } from 'node:path'

interface Rule { re: RegExp, negate: boolean }

export interface IgnoreMatcher {
  /** Whether a context-relative path (with `/` separators) is excluded. */
  ignores: (path: string) => boolean
  /** Whether any rule re-includes (`!`): then excluded directories must still be walked. */
  readonly hasExceptions: boolean
}

function toRegExp (pattern: string): RegExp {
  let re = ''
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++
        if (pattern[i + 1] === '/') { i++; re += '(?:.*/)?' } else re += '.*'
      } else re += '[^/]*'
    } else if (c === '?') re += '[^/]'
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2)
      if (end === -1) { re += '\\['; continue }
      let cls = pattern.slice(i + 1, end).replace(/\\/g, '\\\\')
      if (cls.startsWith('!') || cls.startsWith('^')) cls = `^${cls.slice(1)}`
      re += `[${cls}]`
      i = end
    } else if (c === '\\' && i + 1 < pattern.length) {
      i++
      re += (pattern[i] as string).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
  }
  return new RegExp(`^${re}$`)
}

export function parseDockerignore (text: string): IgnoreMatcher {
  const rules: Rule[] = []
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const negate = line.startsWith('!')
    if (negate) line = line.slice(1).trim()
    line = posix.normalize(line.replace(/^\/+/, '')).replace(/\/+$/, '')
    if (line === '' || line === '.') continue
    rules.push({ re: toRegExp(line), negate })
  }
  return {
    hasExceptions: rules.some(r => r.negate),
    ignores (path) {
      const parts = path.split('/')
      const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'))
      let ignored = false
      for (const rule of rules) {
        if (prefixes.some(p => rule.re.test(p))) ignored = !rule.negate
      }
      return ignored
    }
  }
}
