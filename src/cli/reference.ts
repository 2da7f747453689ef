/**
 * The command reference in docs/cli.md, made from the commands themselves so
 * that it cannot drift: `npm run docs:cli` rewrites it, and a test fails when
 * it is out of date.
 */
import type { EventEmitter } from 'node:events'
import type { Command, Option } from 'commander'
import { buildProgram, registerAll } from './main.ts'
import { EXIT } from './exit-codes.ts'
import { PROGRESS_DOC } from './progress.ts'

function optionLine (o: Option): string {
  const def = o.defaultValue !== undefined && o.defaultValue !== false ? ` (default: ${JSON.stringify(o.defaultValue)})` : ''
  return `| \`${o.flags.replace(/\|/g, '\\|')}\` | ${o.description.replace(/\|/g, '\\|')}${def} |`
}

function usage (cmd: Command): string {
  const names: string[] = []
  for (let c: Command | null = cmd; c !== null; c = c.parent) names.unshift(c.name())
  return `${names.join(' ')} ${cmd.usage()}`.trim()
}

/** Help text added after the options (examples, notes), as commander prints it. */
export function afterText (cmd: Command): string {
  let out = ''
  const emitter = cmd as unknown as EventEmitter
  emitter.emit('afterHelp', { error: false, command: cmd, write: (s: string) => { out += s } })
  return out.trim()
}

function section (cmd: Command, depth: number, lines: string[]): void {
  const visible = cmd.commands.filter(c => c.name() !== 'help')
  if (depth > 0) {
    lines.push(`${'#'.repeat(Math.min(depth + 2, 5))} \`${usage(cmd)}\``, '', cmd.description(), '')
    const opts = cmd.options.filter(o => !o.hidden)
    if (opts.length > 0) {
      lines.push('| option | meaning |', '|---|---|', ...opts.map(optionLine), '')
    }
    const after = afterText(cmd)
    if (after !== '') lines.push('```', after, '```', '')
  }
  for (const c of [...visible].sort((a, b) => a.name().localeCompare(b.name()))) section(c, depth + 1, lines)
}

export async function cliReference (): Promise<string> {
  const { program, ctx } = buildProgram()
  await registerAll(program, ctx)
  const lines = [
    '# kiln command reference',
    '',
    '<!-- Generated from the commands by `npm run docs:cli`; edit the commands, not this file. -->',
    '',
    program.description(),
    '',
    '## Global options',
    '',
    '| option | meaning |', '|---|---|', ...program.options.map(optionLine),
    '',
    '## Exit codes',
    '',
    '| code | meaning |', '|---|---|',
    `| ${EXIT.ok} | success |`,
    `| ${EXIT.failure} | failure not covered below |`,
    `| ${EXIT.usage} | bad command line, config or input |`,
    `| ${EXIT.notFound} | the image, blob, job or peer does not exist |`,
    `| ${EXIT.verification} | a digest, signature or trust check failed |`,
    `| ${EXIT.buildFailed} | a build step failed |`,
    `| ${EXIT.network} | the network or a peer could not be reached in time |`,
    '',
    PROGRESS_DOC,
    '',
    '## Commands',
    ''
  ]
  section(program, 0, lines)
  return lines.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n'
}
