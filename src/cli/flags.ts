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
