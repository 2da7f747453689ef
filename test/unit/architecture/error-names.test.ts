/**
 * Errors are told apart by class, never by a name typed as a string: code in
 * src/ and agent/ compares against a class's static name (`X.name`,
 * `isErrorOf(err, X)`, src/util/error-class.ts), so renaming or deleting a
 * class breaks the typecheck instead of silently breaking the comparison.
 * An error name here is a capitalised word ending in Error or Exception.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'

const REPO = join(import.meta.dirname, '../../..')
const NAME = String.raw`(['"\`])[A-Z]\w*(?:Error|Exception)\1`
/** `=== 'XError'`, `'XError' !==`, `case 'XError':`, `['XError', ...].includes(`, `err.name.startsWith('Tar')`. */
const FORBIDDEN = [
  new RegExp(String.raw`[!=]==?\s*${NAME}`),
  new RegExp(String.raw`${NAME}\s*[!=]==?`),
  new RegExp(String.raw`\bcase\s+${NAME}\s*:`),
  new RegExp(String.raw`\[\s*${NAME}[^\]]*\]\s*\.\s*(?:includes|indexOf|some)\(`),
  /(?:\berr\w*|as Error\))\??\.name\s*\.\s*(?:startsWith|endsWith|includes)\(/
]

function sourceFiles (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter(e => e.isFile() && /\.(ts|mts|mjs)$/.test(e.name))
    .map(e => join(e.parentPath, e.name))
}

/** Every line of src/ and agent/ that compares an error name with a string, as `file:line: text`. */
function stringComparisons (): string[] {
  const found: string[] = []
  for (const file of ['src', 'agent'].flatMap(top => sourceFiles(join(REPO, top)))) {
    readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      if (FORBIDDEN.some(re => re.test(line))) found.push(`${relative(REPO, file)}:${i + 1}: ${line.trim()}`)
    })
  }
  return found
}

describe('error names', () => {
  it('are never compared with a string in src/ or agent/', () => {
    expect(stringComparisons()).toEqual([])
  })

  it('the check sees the forms it forbids', () => {
    const lines = [
      "if ((err as Error).name === 'NotFoundError') return",
      "if ('NotFoundError' !== err.name) throw err",
      "case 'RegistryNotFoundError': return undefined",
      "const usage = ['PolicyFileError', 'KeyFileError'].includes(name)",
      "if (err.name.startsWith('Tar')) throw err"
    ]
    for (const line of lines) expect(FORBIDDEN.some(re => re.test(line)), line).toBe(true)
    expect(FORBIDDEN.some(re => re.test('if (err.name === NotFoundError.name) return'))).toBe(false)
    expect(FORBIDDEN.some(re => re.test("if (name === '' || name === '.') throw new UnsafePathError(h.name, 'x')"))).toBe(false)
  })
})
