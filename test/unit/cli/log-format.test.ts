import { describe, it, expect } from 'vitest'
import { pino } from 'pino'
import type { Logger } from 'pino'
import { formatLogLine, logDestination, pickLogFormat } from '../../../src/cli/log-format.ts'

function logTo (format: 'text' | 'json'): { lines: string[], log: Logger } {
  const lines: string[] = []
  const log = pino({ level: 'info', base: { pid: 42 } }, logDestination(format, { write: (s: string) => { lines.push(s) } }))
  return { lines, log }
}

describe('log format', () => {
  it('text: one line per record with time, level, message and fields, no JSON', () => {
    const { lines, log } = logTo('text')
    log.child({ component: 'agent' }).info({ peer: '12D3KooWabc', storedOn: 3 }, 'peer connected')
    log.warn({ err: new Error('disk full'), path: '/a b' }, 'sweep failed')
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  peer connected component=agent peer=12D3KooWabc storedOn=3\n$/)
    expect(lines[1]).toMatch(/^\S+ WARN  sweep failed err="disk full" path="\/a b"\n$/)
    for (const l of lines) expect(l).not.toMatch(/^\{|"level"|pid=/)
  })

  it('json: pino\'s own lines, unchanged', () => {
    const { lines, log } = logTo('json')
    log.info({ job: 'j1' }, 'job accepted')
    expect(JSON.parse(lines[0] as string)).toMatchObject({ level: 30, msg: 'job accepted', job: 'j1', pid: 42 })
  })

  it('passes a line that is not JSON through as it is', () => {
    expect(formatLogLine('plain text')).toBe('plain text\n')
  })

  it('takes the flag over KILN_LOG_FORMAT, defaults to text, and refuses other names', () => {
    expect(pickLogFormat(undefined, {})).toBe('text')
    expect(pickLogFormat(undefined, { KILN_LOG_FORMAT: 'json' })).toBe('json')
    expect(pickLogFormat('text', { KILN_LOG_FORMAT: 'json' })).toBe('text')
    expect(() => pickLogFormat('pretty', {})).toThrow(/expected one of text, json, got "pretty"/)
  })
})
