/** Parsers for flag values shared by several commands, failing as usage errors. */
import type { Command } from 'commander'
import { parseDuration } from '../util/duration.ts'
import { CliError } from './errors.ts'
import { EXIT } from './exit-codes.ts'

/**
 * `0`, `1500ms`, `30s`, `2m`, `2h`, `7d` to milliseconds. A bare number is in
 * `bareUnitMs` (milliseconds unless given), so flags that took plain seconds
 * or milliseconds before durations keep their meaning. With `maxMs`, zero and
 * values above it are refused.
 */
export function durationFlag (flag: string, text: string, bareUnitMs = 1, maxMs?: number): number {
  let ms: number
  try {
    ms = /^\s*\d+\s*$/.test(text) ? Number(text) * bareUnitMs : parseDuration(text)
  } catch (err) {
    throw new CliError(`${flag}: ${(err as Error).message}`, { exitCode: EXIT.usage, hint: 'use e.g. 1500ms, 30s, 2m, 2h' })
  }
  if (maxMs !== undefined && (ms < 1 || ms > maxMs)) {
    throw new CliError(`${flag} ${text}: expected a duration from 1ms to ${maxMs / 1000}s`, { exitCode: EXIT.usage, hint: 'use e.g. 1500ms, 30s, 2m' })
  }
  return ms
}

/** `--drain-timeout` of `kiln agent` and `kiln up`. */
export const DRAIN_TIMEOUT_HELP = 'on SIGTERM, how long running builds may finish before they are handed back, e.g. 90s, 9m; a bare number is milliseconds'

/** `--timeout` of the commands that follow a job: seconds when bare, as it always was. */
export const JOB_TIMEOUT_HELP = 'give up (and cancel the job) after this long, e.g. 90s, 30m, 2h; a bare number is seconds'
const MAX_JOB_TIMEOUT_MS = 7 * 24 * 3600_000

/** The `--timeout` of `kiln submit` and `kiln jobs resume`, in milliseconds. */
export function jobTimeoutFlag (text: string | undefined): number | undefined {
  return text === undefined ? undefined : durationFlag('--timeout', text, 1000, MAX_JOB_TIMEOUT_MS)
}

/** `HOST:PORT` (an IPv6 host in brackets) of `flag`'s value. */
export function splitHostPort (text: string, flag = '--listen'): { host: string, port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text)
  if (m === null || Number(m[2]) > 65535) throw new CliError(`${flag} ${JSON.stringify(text)} is not HOST:PORT`, { exitCode: EXIT.usage, hint: `for example ${flag} 127.0.0.1:5000` })
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port: Number(m[2]) }
}

/** For a repeatable flag whose values may also be comma-separated. */
export function collectList (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(',').map(s => s.trim()).filter(s => s !== '')]
}

/** The gateway flags `kiln gateway` and `kiln up` share. */
export interface GatewayFlagValues {
  anonymousRead?: boolean
  anonymousPush?: boolean
  tlsCert?: string
  tlsKey?: string
  insecureListen?: boolean
  users?: string
  deleteEnabled?: boolean
}

/** Those of `opts` that were given (strict optional types refuse explicit undefined). */
export function gatewayFlags (opts: GatewayFlagValues): GatewayFlagValues {
  const keys = ['anonymousRead', 'anonymousPush', 'tlsCert', 'tlsKey', 'insecureListen', 'users', 'deleteEnabled'] as const
  const out: Record<string, string | boolean> = {}
  for (const k of keys) {
    const v = opts[k]
    if (v !== undefined) out[k] = v
  }
  return out
}

/** `--log-level` when given: it keeps precedence over kiln.yaml when SIGHUP reloads it. */
export function logLevelFlag (command: Command): { logLevel?: string } {
  const level = command.optsWithGlobals<{ logLevel?: string }>().logLevel
  return level !== undefined ? { logLevel: level } : {}
}
