import type { Instruction } from './context.ts'
import { splitRawWords } from './words.ts'

const ARG_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * ARG NAME[=default]...: before the first FROM it declares a global arg
 * (visible to FROM lines); inside a stage it brings an arg into scope. A
 * build arg overrides the default; a stage ARG without default takes the
 * global value of the same name, or the automatic platform value.
 */
export function handleArg (ins: Instruction): void {
  const words = splitRawWords(ins.raw.args, ins.ctx.escape)
  if (words.length === 0) throw ins.syntaxError('requires at least one argument')
  const { ctx } = ins
  for (const word of words) {
    const eq = word.indexOf('=')
    const name = eq < 0 ? word : word.slice(0, eq)
    if (!ARG_NAME.test(name)) throw ins.syntaxError(`invalid name '${name}'`)
    const fallback = ctx.current === undefined
      ? undefined
      : ctx.globalArgs.get(name) ?? ctx.automaticArgs.get(name)
    const value = ctx.buildArgs.get(name) ?? (eq < 0 ? fallback : ins.word(word.slice(eq + 1)))
    if (ctx.current === undefined) {
      ctx.globalArgs.set(name, value)
      continue
    }
    if (value === undefined) ctx.current.args.delete(name)
    else ctx.current.args.set(name, value)
    ins.add({ op: 'arg', name, ...(value === undefined ? {} : { value }), source: ins.loc })
  }
}
