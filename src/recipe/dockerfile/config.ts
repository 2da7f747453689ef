import type { Instruction } from './context.ts'
import { parseJsonForm } from './json-form.ts'
import { parseNameValues } from './name-value.ts'
import { splitRawWords } from './words.ts'

/** ENV: sets variables for later instructions and the image. */
export function handleEnv (ins: Instruction): void {
  const vars = parseNameValues(ins)
  for (const { key, value } of vars) ins.stage.env.set(key, value)
  ins.add({ op: 'env', vars, source: ins.loc })
}

export function handleLabel (ins: Instruction): void {
  ins.add({ op: 'label', labels: parseNameValues(ins), source: ins.loc })
}

/** MAINTAINER (deprecated): kept as the conventional `maintainer` label. */
export function handleMaintainer (ins: Instruction): void {
  const value = ins.raw.args.trim()
  if (value === '') throw ins.syntaxError('requires exactly one argument')
  ins.add({ op: 'label', labels: [{ key: 'maintainer', value }], source: ins.loc })
}

/** The whole argument as one substituted word; required. */
function singleWord (ins: Instruction): string {
  const value = ins.word(ins.raw.args.trim())
  if (value === '') throw ins.syntaxError('requires exactly one argument')
  return value
}

export function handleWorkdir (ins: Instruction): void {
  ins.add({ op: 'workdir', path: singleWord(ins), source: ins.loc })
}

export function handleUser (ins: Instruction): void {
  ins.add({ op: 'user', user: singleWord(ins), source: ins.loc })
}

export function handleStopSignal (ins: Instruction): void {
  ins.add({ op: 'stopsignal', signal: singleWord(ins), source: ins.loc })
}

const PORT = /^\d{1,5}(-\d{1,5})?(\/(tcp|udp|sctp))?$/i

export function handleExpose (ins: Instruction): void {
  const ports = ins.words(ins.raw.args)
  if (ports.length === 0) throw ins.syntaxError('requires at least one argument')
  for (const port of ports) {
    if (!PORT.test(port)) throw ins.syntaxError(`invalid port '${port}'`, 'PORT[/tcp|/udp|/sctp] or a range such as 8000-8010')
  }
  ins.add({ op: 'expose', ports: ports.map(p => p.toLowerCase()), source: ins.loc })
}

export function handleVolume (ins: Instruction): void {
  const json = parseJsonForm(ins.raw.args)
  const paths = json ?? splitRawWords(ins.raw.args, ins.ctx.escape).map(w => ins.word(w))
  if (paths.length === 0 || paths.some(p => p.trim() === '')) throw ins.syntaxError('volume paths can not be empty')
  ins.add({ op: 'volume', paths, source: ins.loc })
}
