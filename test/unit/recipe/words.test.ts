import { describe, expect, it } from 'vitest'
import { expandHeredoc, expandWord, expandWords, splitRawWords } from '../../../src/recipe/dockerfile/words.ts'

const env = new Map([['A', 'alpha'], ['E', ''], ['P', '/usr/local/bin.tar.gz'], ['S', 'x y']])
const w = (text: string, escape = '\\'): string => expandWord(text, env, escape)

describe('variable substitution (BuildKit shell lexer)', () => {
  it.each([
    ['$A', 'alpha'], ['${A}', 'alpha'], ['pre-${A}-post', 'pre-alpha-post'], ['$Ax', ''], ['${A}x', 'alphax'],
    ['${U:-def}', 'def'], ['${E:-def}', 'def'], ['${A:-def}', 'alpha'],
    ['${U-def}', 'def'], ['${E-def}', ''],
    ['${A:+alt}', 'alt'], ['${E:+alt}', ''], ['${U:+alt}', ''],
    ['${A+alt}', 'alt'], ['${E+alt}', 'alt'], ['${U+alt}', ''],
    ['${U:-${A}}', 'alpha'], ['${P#*/}', 'usr/local/bin.tar.gz'], ['${P##*/}', 'bin.tar.gz'],
    ['${P%.*}', '/usr/local/bin.tar'], ['${P%%.*}', '/usr/local/bin'],
    ['\\$A', '$A'], ["'$A'", '$A'], ['"$A"', 'alpha'], ['"\\$A"', '$A'], ['a\\ b', 'a b'],
    ['$', '$'], ['cost: $5', 'cost: '], ['"a b"', 'a b']
  ])('%s -> %s', (text, expected) => {
    expect(w(text)).toBe(expected)
  })

  it('honours the backtick escape', () => {
    expect(w('`$A', '`')).toBe('$A')
    expect(w('C:\\dir')).toBe('C:dir')
    expect(w('C:\\dir', '`')).toBe('C:\\dir')
  })

  it('fails on ${VAR:?} when unset, naming the variable', () => {
    expect(() => w('${U:?must be set}')).toThrow(expect.objectContaining({ variable: 'U', message: 'U: must be set' }))
    expect(w('${A:?x}')).toBe('alpha')
  })

  it('fails on unterminated quotes and braces', () => {
    expect(() => w("'abc")).toThrow(/single-quote/)
    expect(() => w('${A')).toThrow()
    expect(() => w('${A:=x}')).toThrow(/unsupported modifier/)
  })

  it('splits words after substitution, not inside quotes', () => {
    expect(expandWords('$S "a b" c', env, '\\')).toEqual(['x', 'y', 'a b', 'c'])
    expect(expandWords('"" x', env, '\\')).toEqual(['', 'x'])
  })

  it('keeps quotes and escapes in heredoc content', () => {
    expect(expandHeredoc('echo "$A" \'$A\' \\$A don\'t\n', env, '\\')).toBe('echo "alpha" \'$A\' \\$A don\'t\n')
  })

  it('splits raw words keeping quotes', () => {
    expect(splitRawWords('k="a b" c=d  e\\ f', '\\')).toEqual(['k="a b"', 'c=d', 'e\\ f'])
  })
})
