import type { Instruction } from './context.ts'
import { parseFlags } from './flags.ts'
import { parseJsonForm } from './json-form.ts'

/** argv of CMD/ENTRYPOINT: the JSON form as is, the shell form wrapped in the current SHELL. */
function commandArgv (ins: Instruction, args: string): { argv: string[], form: 'exec' | 'shell' } {
  const json = parseJsonForm(args)
  if (json !== undefined) return { argv: json, form: 'exec' }
  if (args.trim() === '') throw ins.syntaxError('requires at least one argument')
  return { argv: [...ins.stage.shell, args], form: 'shell' }
}

export function handleCmd (ins: Instruction): void {
  ins.add({ op: 'cmd', ...commandArgv(ins, ins.raw.args), source: ins.loc })
}

export function handleEntrypoint (ins: Instruction): void {
  ins.add({ op: 'entrypoint', ...commandArgv(ins, ins.raw.args), source: ins.loc })
}

/** SHELL ["exe", "arg"...]: JSON form only. */
export function handleShell (ins: Instruction): void {
  const argv = parseJsonForm(ins.raw.args)
  if (argv === undefined || argv.length === 0) throw ins.syntaxError('requires the arguments to be in JSON form', 'SHELL ["/bin/bash", "-c"]')
  ins.stage.shell = argv
  ins.add({ op: 'shell', argv, source: ins.loc })
}

const DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/
const DURATION_FLAGS = ['interval', 'timeout', 'start-period', 'start-interval'] as const

/** HEALTHCHECK NONE | HEALTHCHECK [--interval=.. --timeout=.. --start-period=.. --start-interval=.. --retries=N] CMD command */
export function handleHealthcheck (ins: Instruction): void {
  const flags = parseFlags(ins.raw.args, { values: [...DURATION_FLAGS, 'retries'] }, 'HEALTHCHECK', ins.loc)
  const m = /^(\S+)\s*([\s\S]*)$/.exec(flags.rest.trim())
  const kind = m?.[1]?.toUpperCase()
  if (kind === 'NONE') {
    if (flags.values.size > 0 || (m?.[2] ?? '') !== '') throw ins.syntaxError('NONE takes no flags and no arguments')
    ins.add({ op: 'healthcheck', test: ['NONE'], source: ins.loc })
    return
  }
  if (kind !== 'CMD') throw ins.syntaxError('expects NONE or CMD', 'HEALTHCHECK [options] CMD command')
  const args = m?.[2] ?? ''
  const json = parseJsonForm(args)
  if ((json ?? []).length === 0 && args.trim() === '') throw ins.syntaxError('CMD requires a command')
  const test = json !== undefined ? ['CMD', ...json] : ['CMD-SHELL', args]
  const durations: Record<string, string> = {}
  for (const name of DURATION_FLAGS) {
    const value = flags.values.get(name)
    if (value === undefined) continue
    if (!DURATION.test(value)) throw ins.syntaxError(`invalid duration --${name}=${value}`, 'for example 30s, 1m30s')
    durations[name.replace(/-(.)/g, (_, c: string) => c.toUpperCase())] = value
  }
  const retries = flags.values.get('retries')
  if (retries !== undefined && !/^\d+$/.test(retries)) throw ins.syntaxError(`--retries must be a whole number, not ${retries}`)
  ins.add({
    op: 'healthcheck',
    test,
    ...durations,
    ...(retries === undefined ? {} : { retries: Number(retries) }),
    source: ins.loc
  })
}
