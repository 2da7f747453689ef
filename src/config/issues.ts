/**
 * Zod issues as sentences for people. An *issue* is one problem zod found
 * in a value: where (its path of keys) and what was wrong. `expectedText`
 * says what was expected in plain words ("a string", "one of "info",
 * "warn"", "a size like 500GiB or 20G"), never zod's own wording ("Invalid
 * input: expected string, received number"); `describeValue` says what was
 * given. Config files and command-line flags both report through here, so
 * every validation error reads the same: `KEY: expected WHAT, got VALUE`.
 */
import type { z } from 'zod'

type Issue = z.core.$ZodIssue

/** zod's generic messages: said again from the issue's fields instead. */
const GENERIC = /^Invalid (input|option|value)\b/

function article (type: string): string {
  if (type === 'array') return 'a list'
  if (type === 'object') return 'a mapping of settings'
  return `${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type}`
}

function orList (words: string[]): string {
  const unique = [...new Set(words)]
  return unique.length <= 1 ? (unique[0] ?? 'something else') : `${unique.slice(0, -1).join(', ')} or ${unique.at(-1) as string}`
}

/** What the issue expected, in plain words; a schema's own message (a regex's "a size like 500GiB") is kept. */
export function expectedText (issue: Issue): string {
  const own = issue.message.replace(/^expected /, '')
  switch (issue.code) {
    case 'invalid_type':
      return article(issue.expected)
    case 'invalid_value':
      return issue.values.length === 1 ? JSON.stringify(issue.values[0]) : `one of ${issue.values.map(v => JSON.stringify(v)).join(', ')}`
    case 'invalid_union': {
      if (!GENERIC.test(issue.message)) return own
      // Each branch failed: name what each one wanted, preferring a branch's own message ("a size like 500GiB") over its type.
      const branches = issue.errors.map(branch => branch[0] === undefined ? undefined : expectedText(branch[0])).filter((t): t is string => t !== undefined)
      return orList(branches)
    }
    default:
      return GENERIC.test(issue.message) ? own.replace(GENERIC, 'a valid value').replace(/:.*$/, '') : own
  }
}

/** A value as a person would name it: its text (cut at 60 characters) and its kind. */
export function describeValue (value: unknown): string {
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

/**
 * One line per issue: `WHERE: key.path: expected WHAT, got VALUE`, with
 * unknown keys named as such. `where` is the file or flag; `input` the
 * value that was parsed, to quote what was given.
 */
export function formatIssues (where: string, input: unknown, error: z.ZodError): string {
  return error.issues.map(issue => {
    const key = issue.path.map(String).join('.')
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys.map(k => (key === '' ? k : `${key}.${k}`))
      return `${where}: unknown key${keys.length > 1 ? 's' : ''} ${keys.join(', ')} (check the spelling; see docs/configuration.md)`
    }
    const prefix = key === '' ? where : `${where}: ${key}`
    return `${prefix}: expected ${expectedText(issue)}, got ${describeValue(valueAt(input, issue.path))}`
  }).join('\n')
}
