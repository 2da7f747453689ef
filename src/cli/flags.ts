/** Parsers for flag values shared by several commands, failing as usage errors. */
import { parseDuration } from '../util/duration.ts'
import { CliError } from './errors.ts'
import { EXIT } from './exit-codes.ts'

/** `0`, `30s`, `15m`, `2h`, `7d` (a bare number is milliseconds) to milliseconds. */
export function durationFlag (flag: string, text: string): number {
  try {
    return parseDuration(text)
  } catch (err) {
    throw new CliError(`${flag}: ${(err as Error).message}`, { exitCode: EXIT.usage, hint: 'use e.g. 0, 30s, 15m, 2h' })
  }
}

const NETWORK_MODES: Readonly<Record<string, 'default' | 'none'>> = { default: 'default', host: 'default', none: 'none' }

/**
 * `--network[=MODE]` and the `<context>` argument of `kiln build` and
 * `kiln submit` (docs/building.md): `default` or `none`; the bare flag, as
 * before modes existed, is `default`; absent is `none`. `host` is `default`:
 * kiln's network is the node's own. Commander gives an optional value the
 * next word, so `--network CONTEXT` (the old boolean flag) arrives as a mode
 * that is none and no context: that word is the context, the mode `default`.
 */
export function networkAndContext (value: string | boolean | undefined, contextArg: string | undefined): { network: 'default' | 'none', contextArg: string } {
  const known = typeof value === 'string' ? NETWORK_MODES[value] : undefined
  if (typeof value === 'string' && known === undefined) {
    if (contextArg !== undefined) throw new CliError(`--network=${value}: expected default or none`, { exitCode: EXIT.usage, hint: 'default gives every RUN the network unless it says RUN --network=none; none gives it to no step' })
    return { network: 'default', contextArg: value }
  }
  if (contextArg === undefined) throw new CliError('missing required argument \'context\'', { exitCode: EXIT.usage })
  return { network: known ?? (value === true ? 'default' : 'none'), contextArg }
}
