/**
 * Output for people and for scripts: tables and lines on stdout, warnings
 * and notes on stderr, JSON on stdout when asked. Progress has its own
 * renderer, ./progress.ts, which uses the formats here.
 */
import type { Writable } from 'node:stream'

export interface Column<Row> {
  header: string
  value: (row: Row) => string
  /** Right-align (numbers, sizes). */
  right?: boolean
}

export interface Output {
  json: (value: unknown) => void
  table: <Row>(rows: Row[], columns: Array<Column<Row>>) => void
  line: (text: string) => void
  warn: (text: string) => void
  /** A line about what happened, for people, on stderr: not a warning, and never mixed into what stdout carries. */
  note: (text: string) => void
}

export function formatBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return i === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i] as string}`
}

export function formatDuration (ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`
}

export function createOutput (stdout: Writable & { isTTY?: boolean } = process.stdout, stderr: Writable & { isTTY?: boolean, columns?: number } = process.stderr): Output {
  const line = (text: string): void => { stdout.write(`${text}\n`) }
  return {
    json: (value) => { stdout.write(`${JSON.stringify(value, null, 2)}\n`) },
    line,
    warn: (text) => { stderr.write(`warning: ${text}\n`) },
    note: (text) => { stderr.write(`${text}\n`) },
    table: (rows, columns) => {
      const cells = rows.map(r => columns.map(c => c.value(r)))
      const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map(row => (row[i] as string).length)))
      const fmt = (values: string[]): string => values.map((v, i) => {
        const w = widths[i] as number
        return columns[i]?.right === true ? v.padStart(w) : (i === values.length - 1 ? v : v.padEnd(w))
      }).join('  ').trimEnd()
      line(fmt(columns.map(c => c.header)))
      for (const row of cells) line(fmt(row))
    }
  }
}
