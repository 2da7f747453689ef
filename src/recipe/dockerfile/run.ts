import type { Command } from '../ir.ts'
import type { Instruction } from './context.ts'
import { parseFlags } from './flags.ts'
import { isHeredocWord } from './heredoc.ts'
import { parseJsonForm } from './json-form.ts'
import { parseMount } from './mount.ts'

const NO_SANDBOX_ESCAPE = 'kiln runs every step in a rootless sandbox without extra privileges'

const RUN_FLAGS = {
  values: ['network'],
  repeated: ['mount'],
  unsupported: {
    security: NO_SANDBOX_ESCAPE,
    device: NO_SANDBOX_ESCAPE
  }
}

/** The command of a RUN, following BuildKit's handling of heredocs. */
function runCommand (ins: Instruction, args: string): Command {
  const docs = ins.raw.heredocs
  const first = docs[0]
  if (first !== undefined) {
    // `RUN <<EOF` alone: the heredoc is the script (or, with a shebang, the program).
    if (docs.length === 1 && isHeredocWord(args.trim())) {
      return first.content.startsWith('#!')
        ? { form: 'shebang', content: first.content }
        : { form: 'shell', script: first.content }
    }
    // Heredocs feeding commands: the shell gets the text with the bodies after it.
    return { form: 'shell', script: `${args}\n${docs.map(d => `${d.content}${d.name}\n`).join('')}` }
  }
  const argv = parseJsonForm(args)
  if (argv !== undefined) {
    if (argv.length === 0) throw ins.syntaxError('requires at least one argument')
    return { form: 'exec', argv }
  }
  return { form: 'shell', script: args }
}

/** Build args in scope that ENV does not shadow: RUN sees them as environment. */
function buildEnv (ins: Instruction): Record<string, string> {
  const { stage } = ins
  const env: Record<string, string> = {}
  for (const [name, value] of stage.args) {
    if (!stage.env.has(name)) env[name] = value
  }
  return env
}

/** RUN [--network=none|default|host] [--mount=...]... command: no substitution, the shell expands at run time. */
export function handleRun (ins: Instruction): void {
  const flags = parseFlags(ins.raw.args, RUN_FLAGS, 'RUN', ins.loc)
  if (flags.rest.trim() === '') throw ins.syntaxError('requires at least one argument')
  const written = flags.values.get('network')
  if (written !== undefined && written !== 'none' && written !== 'default' && written !== 'host') {
    throw ins.syntaxError(`unsupported network mode '${written}'`, 'use --network=none, --network=default or --network=host')
  }
  // The build's network is the node's own (no bridge, no NAT), so host and default are the same network.
  const network = written === 'host' ? 'default' : written
  const mounts = (flags.repeated.get('mount') ?? []).map(m => parseMount(ins, m))
  ins.add({
    op: 'run',
    command: runCommand(ins, flags.rest),
    shell: ins.stage.shell.slice(),
    env: buildEnv(ins),
    ...(network === undefined ? {} : { network }),
    ...(mounts.length === 0 ? {} : { mounts }),
    source: ins.loc
  })
}
