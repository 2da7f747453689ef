/**
 * Variable substitution and word splitting, following BuildKit's shell lexer
 * (frontend/dockerfile/shell/lex.go): `$VAR`, `${VAR}`, `${VAR:-w}`,
 * `${VAR-w}`, `${VAR:+w}`, `${VAR+w}`, `${VAR:?msg}`, `${VAR?msg}`,
 * `${VAR#glob}`, `${VAR##glob}`, `${VAR%glob}`, `${VAR%%glob}`; single quotes
 * are literal, double quotes allow substitution, the escape character
 * escapes the next character. Quotes and escapes are removed from the result.
 */

export type Env = ReadonlyMap<string, string>

/** A substitution that cannot be done; callers add the recipe location. */
export class WordError extends Error {
  static override readonly name: string = 'WordError'
  override readonly name: string = WordError.name
  /** Set for `${VAR:?msg}` on an unset variable. */
  readonly variable?: string
  constructor (message: string, variable?: string) {
    super(message)
    if (variable !== undefined) this.variable = variable
  }
}

const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0'])

class Lexer {
  private readonly text: string
  private readonly env: Env
  private readonly escape: string
  private readonly split: boolean
  /** Keep quotes and escapes in the output (heredoc content): they still stop substitution. */
  private readonly raw: boolean
  private pos = 0
  private readonly words: string[] = []
  private current = ''
  private inWord = false

  constructor (text: string, env: Env, escape: string, split: boolean, raw = false) {
    this.text = text
    this.env = env
    this.escape = escape
    this.split = split
    this.raw = raw
  }

  run (): string[] {
    while (this.pos < this.text.length) {
      const ch = this.next()
      if (this.raw && (ch === "'" || ch === '"') && !this.text.includes(ch, this.pos)) this.append(ch, false)
      else if (ch === "'") this.append(this.singleQuoted(), false)
      else if (ch === '"') this.append(this.doubleQuoted(), false)
      else if (ch === '$') this.append(this.dollar(), true)
      else if (ch === this.escape) {
        if (this.raw) this.append(ch, false)
        if (this.pos < this.text.length) this.append(this.next(), false)
      } else this.append(ch, true)
    }
    if (this.inWord || !this.split) this.words.push(this.current)
    return this.words
  }

  private append (text: string, splittable: boolean): void {
    if (!this.split || !splittable) {
      this.inWord = true
      this.current += text
      return
    }
    for (const ch of text) {
      if (/\s/.test(ch)) {
        if (this.inWord) this.words.push(this.current)
        this.current = ''
        this.inWord = false
      } else {
        this.current += ch
        this.inWord = true
      }
    }
  }

  private peek (): string | undefined { return this.text[this.pos] }
  private next (): string { return this.text[this.pos++] ?? '' }

  private singleQuoted (): string {
    const end = this.text.indexOf("'", this.pos)
    if (end < 0) throw new WordError('unexpected end of statement while looking for matching single-quote')
    const value = this.text.slice(this.pos, end)
    this.pos = end + 1
    return this.raw ? `'${value}'` : value
  }

  private doubleQuoted (): string {
    let value = ''
    for (;;) {
      if (this.pos >= this.text.length) throw new WordError('unexpected end of statement while looking for matching double-quote')
      const ch = this.next()
      if (ch === '"') return this.raw ? `"${value}"` : value
      if (ch === '$') value += this.dollar()
      else if (ch === this.escape) {
        const after = this.peek()
        if (after === '"' || after === '$' || after === this.escape) value += (this.raw ? ch : '') + this.next()
        else value += ch
      } else value += ch
    }
  }

  /** A word inside `${VAR<op>word}`, up to the closing brace. */
  private nestedWord (): string {
    let value = ''
    for (;;) {
      if (this.pos >= this.text.length) throw new WordError("missing '}' in variable substitution")
      const ch = this.next()
      if (ch === '}') return value
      if (ch === "'") value += this.singleQuoted()
      else if (ch === '"') value += this.doubleQuoted()
      else if (ch === '$') value += this.dollar()
      else if (ch === this.escape) value += this.pos < this.text.length ? this.next() : ''
      else value += ch
    }
  }

  private name (): string {
    const first = this.peek()
    if (first === undefined) return ''
    if (/[0-9]/.test(first)) {
      const m = /^[0-9]+/.exec(this.text.slice(this.pos))?.[0] ?? ''
      this.pos += m.length
      return m
    }
    if (SPECIAL_PARAMS.has(first)) {
      this.pos++
      return first
    }
    const m = /^[A-Za-z0-9_]+/.exec(this.text.slice(this.pos))?.[0] ?? ''
    this.pos += m.length
    return m
  }

  private dollar (): string {
    if (this.peek() !== '{') {
      const name = this.name()
      return name === '' ? '$' : this.env.get(name) ?? ''
    }
    this.pos++
    const name = this.name()
    if (name === '') throw new WordError('bad substitution: missing variable name after ${')
    const value = this.env.get(name)
    const op = this.next()
    if (op === '}') return value ?? ''
    if (op === ':') {
      const modifier = this.next()
      const word = this.nestedWord()
      const empty = value === undefined || value === ''
      if (modifier === '-') return empty ? word : value
      if (modifier === '+') return empty ? '' : word
      if (modifier === '?') {
        if (empty) throw new WordError(`${name}: ${word === '' ? 'is not allowed to be unset' : word}`, name)
        return value
      }
      throw new WordError(`unsupported modifier (:${modifier}) in substitution`)
    }
    if (op === '-' || op === '+' || op === '?') {
      const word = this.nestedWord()
      if (op === '-') return value ?? word
      if (op === '+') return value === undefined ? '' : word
      if (value === undefined) throw new WordError(`${name}: ${word === '' ? 'is not allowed to be unset' : word}`, name)
      return value
    }
    if (op === '#' || op === '%') {
      const longest = this.peek() === op
      if (longest) this.pos++
      const pattern = this.nestedWord()
      return trimPattern(value ?? '', pattern, op === '#' ? 'prefix' : 'suffix', longest)
    }
    throw new WordError(`unsupported modifier (${op}) in substitution`)
  }
}

function globToRegExpSource (glob: string): string {
  let source = ''
  for (const ch of glob) {
    if (ch === '*') source += '.*'
    else if (ch === '?') source += '.'
    else source += ch.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&')
  }
  return source
}

function trimPattern (value: string, glob: string, side: 'prefix' | 'suffix', longest: boolean): string {
  const re = new RegExp(`^${globToRegExpSource(glob)}$`, 's')
  const lengths = Array.from({ length: value.length + 1 }, (_, i) => i)
  if (longest) lengths.reverse()
  for (const n of lengths) {
    const part = side === 'prefix' ? value.slice(0, n) : value.slice(value.length - n)
    if (re.test(part)) return side === 'prefix' ? value.slice(n) : value.slice(0, value.length - n)
  }
  return value
}

/** Substitutes variables in one word and removes quotes/escapes; whitespace is kept. */
export function expandWord (text: string, env: Env, escape: string): string {
  return new Lexer(text, env, escape, false).run()[0] ?? ''
}

/** Like expandWord, then splits on unquoted whitespace (also inside unquoted values). */
export function expandWords (text: string, env: Env, escape: string): string[] {
  return new Lexer(text, env, escape, true).run()
}

/**
 * Substitutes variables in heredoc content (unquoted delimiter): quotes and
 * escapes stay in the text, but still protect what they enclose, as in BuildKit.
 */
export function expandHeredoc (text: string, env: Env, escape: string): string {
  return new Lexer(text, env, escape, false, true).run()[0] ?? ''
}

/**
 * Splits on whitespace outside quotes, keeping quotes and escapes as written
 * (BuildKit's parseWords): the pieces of `k="a b" c=d` are `k="a b"`, `c=d`.
 */
export function splitRawWords (text: string, escape: string): string[] {
  const words: string[] = []
  let current = ''
  let quote: string | undefined
  let inWord = false
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] ?? ''
    if (quote === undefined && /\s/.test(ch)) {
      if (inWord) words.push(current)
      current = ''
      inWord = false
      continue
    }
    inWord = true
    current += ch
    if (ch === escape && quote !== "'" && i + 1 < text.length) {
      current += text[++i] ?? ''
    } else if (quote === undefined && (ch === '"' || ch === "'")) {
      quote = ch
    } else if (ch === quote) {
      quote = undefined
    }
  }
  if (inWord) words.push(current)
  return words
}
