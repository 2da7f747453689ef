import type { KeyValue } from '../ir.ts'
import type { Instruction } from './context.ts'
import { splitRawWords } from './words.ts'

/**
 * `KEY=VALUE...` pairs of ENV and LABEL (or the legacy one-pair `KEY VALUE`
 * form), substituted with the variables in scope before the instruction:
 * later pairs do not see earlier ones, as in BuildKit.
 */
export function parseNameValues (ins: Instruction): KeyValue[] {
  const words = splitRawWords(ins.raw.args, ins.ctx.escape)
  const first = words[0]
  if (first === undefined) throw ins.syntaxError('requires at least one argument')
  const env = ins.env()
  if (!first.includes('=')) {
    if (words.length < 2) throw ins.syntaxError('must have two arguments', `${ins.keyword} key=value`)
    const value = ins.raw.args.slice(ins.raw.args.indexOf(first) + first.length).trim()
    return [{ key: ins.word(first, env), value: ins.word(value, env) }]
  }
  return words.map(word => {
    const eq = word.indexOf('=')
    if (eq < 0) throw ins.syntaxError(`can't find = in "${word}"`, `${ins.keyword} key=value [key=value...]`)
    if (eq === 0) throw ins.syntaxError('names can not be blank')
    return { key: ins.word(word.slice(0, eq), env), value: ins.word(word.slice(eq + 1), env) }
  })
}
