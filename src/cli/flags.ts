/** Parsers for flag values shared by several commands, failing as usage errors. */
import type { Command } from 'commander'
import { parseDuration } from '../util/duration.ts'
import { CliError } from './errors.ts'
import { EXIT } from './exit-codes.ts'
import type { GatewayNodeInit } from '../node/index.ts'

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
/** `--relay` and `--relay-via` of the commands that run an agent (kiln agent, kiln up); docs/network.md#relays. */
export const RELAY_HELP = 'relay connections for peers that nobody can dial (a login node for its compute nodes; node.relay)'
export const RELAY_VIA_HELP = 'comma-separated relay multiaddrs (with /p2p/<id>) to reserve a slot on and be reached through, for a node whose inbound connections are dropped (node.relayVia); add --listen \'\' to announce no direct address'

export const JOB_TIMEOUT_HELP = 'give up (and cancel the job) after this long, e.g. 90s, 30m, 2h; a bare number is seconds'
const MAX_JOB_TIMEOUT_MS = 7 * 24 * 3600_000

/** The `--timeout` of `kiln submit` and `kiln jobs resume`, in milliseconds. */
export function jobTimeoutFlag (text: string | undefined): number | undefined {
  return text === undefined ? undefined : durationFlag('--timeout', text, 1000, MAX_JOB_TIMEOUT_MS)
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

/**
 * `kiln build --secret id=ID[,src=FILE|,env=VAR]` (BuildKit's): the value
 * of a secret from a file or the environment; with neither, the variable
 * named ID. `type=file|env` is accepted as BuildKit writes it. The value is
 * handed to the builder and nowhere else (docs/security.md).
 */
export async function secretFlags (specs: readonly string[]): Promise<Record<string, Uint8Array>> {
  const { readFile } = await import('node:fs/promises')
  const out: Record<string, Uint8Array> = {}
  const usage = (spec: string, why: string): CliError => new CliError(`--secret ${spec}: ${why}`, { exitCode: EXIT.usage, hint: 'write --secret id=ID,src=FILE or --secret id=ID,env=VARIABLE' })
  for (const spec of specs) {
    const fields = new Map<string, string>()
    for (const part of spec.split(',')) {
      const eq = part.indexOf('=')
      if (eq <= 0) throw usage(spec, `'${part}' is not KEY=VALUE`)
      const key = part.slice(0, eq).toLowerCase()
      fields.set(key === 'source' ? 'src' : key, part.slice(eq + 1))
    }
    for (const key of fields.keys()) if (!['id', 'src', 'env', 'type'].includes(key)) throw usage(spec, `unknown key '${key}'`)
    const id = fields.get('id')
    if (id === undefined || id === '') throw usage(spec, 'no id')
    const src = fields.get('src')
    const env = fields.get('env') ?? (src === undefined ? id : undefined)
    if (src !== undefined && fields.has('env')) throw usage(spec, 'give src or env, not both')
    if (src !== undefined) {
      out[id] = await readFile(src).catch((err: Error) => { throw usage(spec, `cannot read ${src}: ${err.message}`) })
    } else {
      const value = process.env[env ?? id]
      if (value === undefined) throw usage(spec, `the environment has no ${env ?? id}`)
      out[id] = Buffer.from(value)
    }
  }
  return out
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

const GATEWAY_FLAG_KEYS = ['anonymousRead', 'anonymousPush', 'tlsCert', 'tlsKey', 'insecureListen', 'users', 'deleteEnabled'] as const

/** The gateway flags `kiln gateway` and `kiln up` share: settings of src/node's gateway, named as it names them. */
export type GatewayFlagValues = Pick<GatewayNodeInit, typeof GATEWAY_FLAG_KEYS[number]>

/** Those of `opts` that were given (strict optional types refuse explicit undefined). */
export function gatewayFlags (opts: GatewayFlagValues): GatewayFlagValues {
  const out: Record<string, string | boolean> = {}
  for (const k of GATEWAY_FLAG_KEYS) {
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

/**
 * `KEY=VALUE` values of a repeatable flag (`--label`, `--annotation`) as a
 * record; a later KEY wins, VALUE may be empty, KEY may not.
 */
export function keyValueFlags (flag: string, values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const kv of values) {
    const i = kv.indexOf('=')
    if (i <= 0) throw new CliError(`${flag} ${kv}: expected KEY=VALUE`, { exitCode: EXIT.usage, hint: `for example ${flag} org.opencontainers.image.source=https://example.org/app` })
    out[kv.slice(0, i)] = kv.slice(i + 1)
  }
  return out
}

/** `--iidfile FILE` of `kiln build` and `kiln submit`: the digest the image is stored under, as docker build writes its image ID. */
export async function writeIidFile (file: string, digest: string): Promise<void> {
  const { writeFile } = await import('node:fs/promises')
  await writeFile(file, digest).catch((err: Error) => {
    throw new CliError(`--iidfile ${file}: ${err.message}`, { exitCode: EXIT.failure, hint: `the image is in the local store as ${digest}` })
  })
}
