/**
 * Output for people and for scripts: tables and lines on stdout, warnings
 * and progress on stderr, JSON on stdout when asked. Progress bars draw only
 * on a terminal, with bytes, the average rate and an ETA; elsewhere (a log
 * file, a batch job) one line every 5 s at most, for all bars together, and
 * a final line only for a bar that wrote one, so short transfers add
 * nothing and nothing repeats.
 */
import type { Writable } from 'node:stream'

export interface Column<Row> {
  header: string
  value: (row: Row) => string
  /** Right-align (numbers, sizes). */
  right?: boolean
}

export interface Progress {
  update: (done: number, detail?: string) => void
  done: (summary?: string) => void
}

export interface Output {
  json: (value: unknown) => void
  table: <Row>(rows: Row[], columns: Array<Column<Row>>) => void
  line: (text: string) => void
  warn: (text: string) => void
  /** A line about what happened, for people, on stderr: not a warning, and never mixed into what stdout carries. */
  note: (text: string) => void
  progress: (label: string, total?: number) => Progress
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

/** The progress line's figures: `10.0 MiB/200 MiB, 5.0 MiB/s, ETA 38s` (the rate is the average since the start). */
export function progressFigures (current: number, total: number | undefined, elapsedMs: number): string {
  const perSecond = current / Math.max(1, elapsedMs) * 1000
  const known = total !== undefined && total > 0
  const parts = [known ? `${formatBytes(current)}/${formatBytes(total)}` : formatBytes(current), `${formatBytes(perSecond)}/s`]
  if (known && current < total) parts.push(perSecond > 0 ? `ETA ${formatDuration((total - current) / perSecond * 1000)}` : 'ETA unknown')
  return parts.join(', ')
}

/** Off a terminal, at most one progress line this often, for all bars together. */
const PLAIN_PROGRESS_EVERY_MS = 5000

export function createOutput (stdout: Writable & { isTTY?: boolean } = process.stdout, stderr: Writable & { isTTY?: boolean, columns?: number } = process.stderr): Output {
  const line = (text: string): void => { stdout.write(`${text}\n`) }
  const tty = stderr.isTTY === true
  // Off a terminal: when the last progress line was written, by any bar.
  let lastPlain = Date.now()
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
    },
    progress: (label, total) => {
      const start = Date.now()
      let lastDrawn = 0
      let current = 0
      let detailText = ''
      // Off a terminal a bar that never wrote a line says nothing when done: the command's own summary covers it.
      let wrotePlain = false
      const text = (detail: string): string => {
        let bar = ''
        if (total !== undefined && total > 0) {
          const width = 24
          const filled = Math.min(width, Math.round(current / total * width))
          bar = `[${'='.repeat(filled)}${' '.repeat(width - filled)}] ${String(Math.floor(current / total * 100)).padStart(3)}% `
        }
        return `${label} ${bar}${progressFigures(current, total, Date.now() - start)}${detail === '' ? '' : `, ${detail}`}`
      }
      return {
        update: (done, detail) => {
          current = done
          if (detail !== undefined) detailText = detail
          const now = Date.now()
          if (tty) {
            if (now - lastDrawn > 100) { stderr.write(`\r\x1b[K${text(detailText)}`); lastDrawn = now }
          } else if (now - lastPlain >= PLAIN_PROGRESS_EVERY_MS) {
            stderr.write(`${text(detailText)}\n`)
            lastPlain = now
            wrotePlain = true
          }
        },
        done: (summary) => {
          if (tty) stderr.write(`\r\x1b[K${text(summary ?? detailText)}\n`)
          else if (wrotePlain) stderr.write(`${text(summary ?? detailText)}\n`)
        }
      }
    }
  }
}
