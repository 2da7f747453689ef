/**
 * How `kiln`'s logs look on stderr. A *log format* is `text` or `json`:
 * `text` (the default, as podman and containerd print their logs) is one
 * line per record for people, `12:04:05.120 INFO  peer connected
 * peer=12D3KooW... component=agent`; `json` (`--log-format json` or
 * KILN_LOG_FORMAT=json, for log collectors) is pino's own line, unchanged.
 * Either way there is one logger and the records carry the same fields
 * (docs/configuration.md, "Logs"); only the rendering differs, so human lines and
 * raw JSON never mix on one terminal.
 */
import type { DestinationStream } from 'pino'

export type LogFormat = 'text' | 'json'

export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json']

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' }
/** pino's own fields, said by the line's layout rather than as key=value. */
const OWN = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'v'])

function quoteIfNeeded (text: string): string {
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text)
}

function fieldText (value: unknown): string {
  if (typeof value === 'string') return quoteIfNeeded(value)
  if (typeof value === 'object' && value !== null && 'message' in value && typeof value.message === 'string') {
    // pino's err serializer: the message is what a person needs; the stack is for KILN_DEBUG=1 and json.
    return quoteIfNeeded(value.message)
  }
  return JSON.stringify(value) ?? String(value)
}

/** One pino JSON line as a text line; a line that is not JSON passes through as it is. */
export function formatLogLine (json: string): string {
  let record: Record<string, unknown>
  try {
    record = JSON.parse(json) as Record<string, unknown>
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`
  }
  const time = typeof record.time === 'number' ? new Date(record.time).toISOString().slice(11, 23) : ''
  const level = (typeof record.level === 'number' ? LEVELS[record.level] : undefined) ?? String(record.level)
  const msg = typeof record.msg === 'string' ? record.msg : ''
  const fields = Object.entries(record).filter(([k]) => !OWN.has(k)).map(([k, v]) => `${k}=${fieldText(v)}`)
  return `${[time, level.padEnd(5), msg, ...fields].filter(s => s !== '').join(' ')}\n`
}

/** `--log-format`, else KILN_LOG_FORMAT, else text; throws on anything else (the caller makes it a usage error). */
export function pickLogFormat (flag: string | undefined, env: NodeJS.ProcessEnv = process.env): LogFormat {
  const given = flag ?? (env.KILN_LOG_FORMAT !== undefined && env.KILN_LOG_FORMAT !== '' ? env.KILN_LOG_FORMAT : 'text')
  const format = LOG_FORMATS.find(f => f === given)
  if (format === undefined) throw new RangeError(`--log-format: expected one of ${LOG_FORMATS.join(', ')}, got ${JSON.stringify(given)}`)
  return format
}

/** What pino writes to, given the sink it would write JSON lines to (stderr): the sink itself for json, through formatLogLine for text. */
export function logDestination (format: LogFormat, sink: DestinationStream): DestinationStream {
  return format === 'json' ? sink : { write: (line: string) => { sink.write(formatLogLine(line)) } }
}
