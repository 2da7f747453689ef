/** Parsers for flag values shared by several commands, failing as usage errors. */
import type { Command } from 'commander'
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
