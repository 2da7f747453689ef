/**
 * The `kiln` command. Thin: each command group is a file in ./commands that
 * registers itself and calls into the modules; this file wires the global
 * options, finds the commands and turns errors into messages and exit codes.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { Command, CommanderError } from 'commander'
import { createContext } from './context.ts'
import type { CliContext } from './context.ts'
import { CliError } from './errors.ts'
import type { ErrorExit } from './error-exits.ts'
import { EXIT } from './exit-codes.ts'
import { createOutput } from './output.ts'
import { endProgress } from './progress.ts'
import { tuneHeapForBulkData } from '../util/heap.ts'
import type { Output } from './output.ts'

export type { CliContext }

interface CommandModule { register: (program: Command, ctx: CliContext) => void }

const COMMANDS_DIR = join(import.meta.dirname, 'commands')
const PACKAGE_JSON = join(import.meta.dirname, '..', '..', 'package.json')

export function buildProgram (out: Output = createOutput()): { program: Command, ctx: ReturnType<typeof createContext> } {
  const program = new Command('kiln')
  program
    .description('A peer-to-peer build farm for container images: rootless builds on any node, OCI layers shared peer to peer.')
    .option('-c, --config <file>', 'config file (kiln.yaml); default $KILN_CONFIG')
    .option('--data-dir <dir>', 'data dir; default $KILN_DATA_DIR, else $XDG_DATA_HOME/kiln or ~/.local/share/kiln')
    .option('--log-level <level>', 'trace, debug, info, warn, error or silent')
    .option('--log-format <format>', 'text (default: one line per record, for people) or json (for log collectors); default $KILN_LOG_FORMAT, else text')
    .version(`kiln ${(JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { version: string }).version} (Node ${process.versions.node})`, '-V, --version', 'print the kiln and Node versions')
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: true })
    .exitOverride()
    .addHelpText('after', `
Examples:
  kiln image import oci-archive:busybox.tar         put an image into the local store
  kiln build -t demo/hello:1 .                      build the Dockerfile in . rootlessly
  kiln agent --bootstrap /ip4/10.0.0.1/tcp/4001/p2p/12D3...   join a network and build for it
  kiln submit --platform linux/arm64 -t demo/hello:1 .        have the network build it
Docs: docs/ in the kiln repository.`)
  const ctx = createContext(program, out)
  return { program, ctx }
}

export async function registerAll (program: Command, ctx: CliContext): Promise<void> {
  const files = readdirSync(COMMANDS_DIR).filter(f => f.endsWith('.ts') && !f.endsWith('.test.ts')).sort()
  for (const file of files) {
    const mod = await import(join(COMMANDS_DIR, file)) as Partial<CommandModule>
    if (typeof mod.register === 'function') mod.register(program, ctx)
  }
  // Every subcommand reports usage errors through us, not process.exit.
  const override = (cmd: Command): void => { cmd.exitOverride(); cmd.commands.forEach(override) }
  override(program)
}

/** Commands whose arguments after the first operand are another program's argv (`kiln run IMAGE sh -c ...`). */
const TRAILING_ARGV_COMMANDS = new Set(['run'])

/** Whether `arg` is an option of `cmd` that takes its value from the next argument. */
function takesNext (cmd: Command, arg: string): boolean {
  const o = cmd.options.find(o => o.long === arg || o.short === arg)
  return o !== undefined && (o.required || o.optional)
}

/**
 * For the commands of TRAILING_ARGV_COMMANDS: a `--` before their first
 * operand, so that neither kiln's global options nor the command's own
 * read the flags meant for the program (`-c` of `sh -c` is not --config).
 */
export function markTrailingArgv (program: Command, args: readonly string[]): string[] {
  let i = 0
  // The global options may also come after the command's name (kiln run --data-dir D IMAGE).
  const skipOptions = (cmds: Command[]): boolean => {
    while (i < args.length) {
      const a = args[i] as string
      if (a === '--') return false
      if (!a.startsWith('-') || a === '-') return true
      i += cmds.some(c => takesNext(c, a)) ? 2 : 1
    }
    return false
  }
  if (!skipOptions([program])) return [...args]
  const sub = program.commands.find(c => c.name() === args[i] || c.aliases().includes(args[i] as string))
  if (sub === undefined || !TRAILING_ARGV_COMMANDS.has(sub.name())) return [...args]
  i++
  if (!skipOptions([sub, program])) return [...args]
  return [...args.slice(0, i), '--', ...args.slice(i)]
}

/** The exit code and hint for an error: a CliError's own, else the table's (loaded only now: see error-exits.ts). */
async function exitFor (err: unknown): Promise<ErrorExit> {
  if (err instanceof CliError) return { code: err.exitCode, ...(err.hint !== undefined ? { hint: err.hint } : {}) }
  const { errorExit } = await import('./error-exits.ts')
  return errorExit(err)
}

function printError (err: unknown, hint: string | undefined): void {
  const message = err instanceof Error ? err.message : String(err)
  process.stderr.write(`kiln: error: ${message}\n`)
  if (hint !== undefined) process.stderr.write(`hint: ${hint}\n`)
  if (process.env.KILN_DEBUG === '1' && err instanceof Error && err.stack !== undefined) process.stderr.write(`${err.stack}\n`)
}

/** Runs kiln with process-style argv; resolves to the exit code. */
export async function main (argv: string[]): Promise<number> {
  tuneHeapForBulkData()
  const { program, ctx } = buildProgram()
  await registerAll(program, ctx)
  try {
    await program.parseAsync([...argv.slice(0, 2), ...markTrailingArgv(program, argv.slice(2))])
    return ctx.commandExitCode() ?? EXIT.ok
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.ok
      return EXIT.usage
    }
    const exit = await exitFor(err)
    endProgress()
    printError(err, exit.hint)
    return exit.code
  } finally {
    await ctx.close()
  }
}
