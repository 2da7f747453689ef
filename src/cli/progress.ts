/**
 * The progress of every long operation of the CLI (`kiln pull`, `kiln
 * submit`, `kiln build`, `kiln image import|export`), drawn one way. A
 * *task* is one piece of work that moves bytes: a blob fetched, a layer
 * compressed into the store, a base pulled, a context packed. Tasks are
 * grouped by *phase* (`pull`, `fetch`, `base`, `layer`, `context`,
 * `import`, `export`) and named by an id (a digest, mostly); the reporter
 * adds them up into a total.
 *
 * Modes (`--progress`):
 * - `tty`: a live block on stderr, redrawn in place (log-update): one line
 *   per running task and a total line, each with bytes, rate and ETA; a
 *   finished task leaves one line in the scrollback.
 * - `plain`: lines that never repeat and never redraw, for logs and batch
 *   jobs: one when a task has run for a second (so short ones add nothing),
 *   one when that task ends, and a total line at most every 5 s.
 * - `json`: one JSON object per line on stderr (schema in docs/cli.md,
 *   "Progress events"), for scripts.
 * - `quiet`: nothing.
 * - `auto` (the default): `quiet` when the command prints `--json` (a
 *   script reads it; it asks for events with `--progress=json`), notes
 *   excepted, else `tty` when stderr is a terminal, else `plain`.
 *
 * The modules never import this file (docs/architecture.md): they report
 * through their own callbacks (`onProgress`, `onBlob`, `onEvent`), and
 * the command turns those into tasks here.
 */
import { Option } from 'commander'
import type { Writable } from 'node:stream'
import { CliError } from './errors.ts'
import { EXIT } from './exit-codes.ts'
import { formatBytes, formatDuration } from './output.ts'

/** The "Progress" section of docs/cli.md (written by ./reference.ts): the modes and the JSON events' schema. */
export const PROGRESS_DOC = `## Progress

Every long operation (\`kiln pull\`, \`kiln submit\`, \`kiln build\`,
\`kiln image import|export|unpack\`, \`kiln store verify\`) reports its
*tasks* on stderr: a blob pulled, imported, exported or fetched as a
result, a base image's blob, a layer compressed into the store, a build
context packed. \`--progress MODE\` chooses how:

| mode | what stderr gets |
|---|---|
| \`auto\` (default) | \`quiet\` when the command prints \`--json\` (notes such as "looking for peers" excepted); else \`tty\` on a terminal, \`plain\` elsewhere |
| \`tty\` | a block redrawn in place: a line per running task (bytes, bar, rate, ETA), a total line; each finished task leaves one line |
| \`plain\` | lines that never repeat: a task's start once it has run 1 s, its end, and a total line at most every 5 s |
| \`json\` | one JSON object per line, below |
| \`quiet\` | nothing |

### Progress events

With \`--progress=json\` every line kiln writes on stderr for people is one
object with \`type\` and \`time\` (ISO 8601). Log records (\`--log-level\`)
come on stderr too: with \`--log-format json\` they are JSON objects without
\`type\`, so that stderr is all JSON. Rates and ETAs are left to the reader:
\`bytes\` over \`time\`.

| type | fields | when |
|---|---|---|
| \`start\` | \`phase\`, \`id\`, \`label\`, \`bytes\`, \`total\` | a task starts |
| \`progress\` | \`phase\`, \`id\`, \`bytes\`, \`total\`, \`detail\`? | at most once a second per task |
| \`done\` | \`phase\`, \`id\`, \`bytes\`, \`total\`, \`durationMs\` | the task ended; \`bytes\` is what it moved |
| \`fail\` | \`phase\`, \`id\`, \`bytes\`, \`total\`, \`error\` | it failed, or was still running when the command ended (\`did not finish\`, before the command's error) |
| \`note\` | \`text\` | a line for people (a peer search that takes a while, a build step's output, \`kiln submit --json\`'s job events) |
| \`summary\` | \`tasks\`, \`bytes\`, \`durationMs\` | once, last, when any task ran: \`bytes\` is the sum of the tasks' |

\`phase\` is one of \`pull\`, \`fetch\` (a submitted job's result blobs and
pinned bases), \`context\`, \`base\`, \`layer\`, \`import\`, \`export\`,
\`download\` (a URL source), \`verifying\`. \`id\` is a blob digest, else
a path, URL or (\`layer\`) the step's cache key. \`total\` is \`null\`
while unknown (a layer's compressed size is known when it is done). For
a task, \`bytes\` never goes down, and a task has one \`start\` and one
\`done\` or \`fail\`.

\`\`\`
kiln pull sha256:4f1c...e9 --progress=json 2>events.jsonl
jq -s 'map(select(.type == "done")) | map(.bytes) | add' events.jsonl
\`\`\`
`

export const PROGRESS_MODES = ['auto', 'tty', 'plain', 'json', 'quiet'] as const
export type ProgressMode = typeof PROGRESS_MODES[number]

/** Off a terminal, a total line at most this often. */
export const PLAIN_EVERY_MS = 5000
/** Off a terminal, a task says it started only once it has run this long. */
export const PLAIN_QUIET_MS = 1000
/** In JSON, a task's `progress` event at most this often. */
export const JSON_EVERY_MS = 1000
/** On a terminal, the block is redrawn at most this often. */
const TTY_EVERY_MS = 100
/** On a terminal, at most this many running tasks get a line; the rest are counted. */
const TTY_MAX_LINES = 6

export interface ProgressTask {
  /** Bytes done so far (not a delta); `total` when it becomes known; `detail` shown after the figures (`3/10 blobs`). Calls after done() or fail() are ignored. */
  update: (bytes: number, total?: number, detail?: string) => void
  /** The task ended; `bytes` is its final count (default the last update, else the total). */
  done: (bytes?: number) => void
  fail: (error: string) => void
}

export interface TaskOptions {
  /** What people read (default: the id, a digest shortened). */
  label?: string
  /** Bytes expected; unknown for a layer being compressed. */
  total?: number
}

export interface ProgressReporter {
  /** The mode `auto` resolved to. */
  readonly mode: Exclude<ProgressMode, 'auto'>
  /**
   * Starts a task, or returns the one of this phase and id started before,
   * running or ended (so a callback can call it on every report, and a
   * command can end every task it knows of once the work is done).
   */
  task: (phase: string, id: string, options?: TaskOptions) => ProgressTask
  /** A message for people (`looking for peers...`): a line, or a `note` event. */
  note: (text: string) => void
  /** Writes a line to `stream` (the command's stdout) without tearing the live block; in json mode a line for stderr is a `note` event. */
  print: (text: string, stream?: Writable) => void
  /** Ends the display: the block is cleared, a total line (plain, if it wrote any; tty, for several tasks) or `summary` event (json) is written once if any task ran. */
  close: () => void
}

/** A parsed `--progress` value; a CliError naming the modes otherwise (commander's choices() does this for the flag). */
export function parseProgressMode (text: string | undefined): ProgressMode {
  if (text === undefined) return 'auto'
  if ((PROGRESS_MODES as readonly string[]).includes(text)) return text as ProgressMode
  throw new CliError(`--progress ${text}: expected one of ${PROGRESS_MODES.join(', ')}`, { exitCode: EXIT.usage })
}

/** The `--progress` flag, the same on every command that has long operations. */
export function progressOption (): Option {
  return new Option('--progress <mode>', 'how progress is shown on stderr: auto (quiet with --json, else a live display on a terminal, else plain), tty, plain (lines, at most one every 5 s besides task start and end), json (one event per line, docs/cli.md "Progress events") or quiet')
    .choices(PROGRESS_MODES)
    .default('auto')
}

interface TaskState {
  phase: string
  id: string
  label: string
  /** The label uncut, for JSON. */
  full: string
  total: number | undefined
  bytes: number
  detail: string
  start: number
  lastJson: number
  /** Plain mode: its start line was written. */
  announced: boolean
  /** It had an update before it ended. */
  updated: boolean
  ended: boolean
}

/** `sha256:4f1c2a9b3e7d...` as `4f1c2a9b3e7d`; other ids as they are. */
function shortId (id: string): string {
  return /^sha256:[0-9a-f]{64}$/.test(id) ? id.slice(7, 19) : id
}

/** Labels longer than this are cut on a terminal and in plain lines (a RUN line can be long); JSON keeps them whole. */
const LABEL_MAX = 48

function cut (label: string): string {
  return label.length <= LABEL_MAX ? label : `${label.slice(0, LABEL_MAX - 3)}...`
}

function rateOf (bytes: number, ms: number): number {
  return bytes / Math.max(1, ms) * 1000
}

/** `10.0 MiB/200 MiB, 5.0 MiB/s, ETA 38s`: bytes, the average rate since the start and, when the total is known and a second has gone, the time left at that rate. */
export function figures (bytes: number, total: number | undefined, elapsedMs: number): string {
  const perSecond = rateOf(bytes, elapsedMs)
  const known = total !== undefined && total > 0
  const parts = [known ? `${formatBytes(bytes)}/${formatBytes(total)}` : formatBytes(bytes), `${formatBytes(perSecond)}/s`]
  // Under a second the average says little (a small blob first makes the total's rate tiny): no ETA yet.
  if (known && bytes < total && elapsedMs >= 1000) parts.push(perSecond > 0 ? `ETA ${formatDuration((total - bytes) / perSecond * 1000)}` : 'ETA unknown')
  return parts.join(', ')
}

/** `pull 4f1c2a9b3e7d`; a task whose label is empty goes by its phase alone (`verifying`). */
function name (t: { phase: string, label: string }): string {
  return t.label === '' ? t.phase : `${t.phase} ${t.label}`
}

function bar (bytes: number, total: number | undefined): string {
  if (total === undefined || total <= 0) return ''
  const width = 20
  const filled = Math.min(width, Math.round(bytes / total * width))
  return `[${'='.repeat(filled)}${' '.repeat(width - filled)}] ${String(Math.min(100, Math.floor(bytes / total * 100))).padStart(3)}% `
}

export interface ProgressInit {
  /** The command's --json was given: `auto` is `quiet`. */
  json?: boolean
  /** Where progress goes; default process.stderr. */
  stderr?: Writable & { isTTY?: boolean, columns?: number }
  /** Where print() writes by default; default process.stdout. */
  stdout?: Writable
}

/** Reporters not closed yet: a command that fails ends them before its error is printed (endProgress). */
const open = new Set<ProgressReporter>()

/** A reporter in `mode`; log-update is loaded only for a terminal (it costs every other command its load time). */
export async function createProgress (mode: ProgressMode, init: ProgressInit = {}): Promise<ProgressReporter> {
  const stderr = init.stderr ?? process.stderr
  const stdout = init.stdout ?? process.stdout
  const resolved = mode !== 'auto' ? mode : init.json === true ? 'quiet' : stderr.isTTY === true ? 'tty' : 'plain'
  // Quiet because of --json, not asked for: notes (a peer search that takes a while) still say what is going on.
  const notes = mode !== 'quiet'
  const tasks = new Map<string, TaskState>()
  let all: TaskState[] = []
  let first: number | undefined
  let lastPlain = 0
  let wrotePlain = false
  let lastDraw = 0
  let closed = false
  const live = resolved === 'tty' ? (await import('log-update')).createLogUpdate(stderr as NodeJS.WriteStream, { showCursor: true }) : undefined

  const sums = (): { bytes: number, total: number | undefined, running: number, done: number } => {
    let bytes = 0
    let total = 0
    let unknown = false
    let running = 0
    for (const t of all) {
      bytes += t.bytes
      if (t.total === undefined) unknown = true
      else total += t.total
      if (!t.ended) running++
    }
    // Bytes still unknown (a layer being compressed) make the total unknown, not smaller than it is.
    return { bytes, total: unknown ? undefined : total, running, done: all.length - running }
  }

  const totalLine = (): string => {
    const s = sums()
    return `total: ${s.done}/${all.length} done, ${figures(s.bytes, s.total, Date.now() - (first ?? Date.now()))}`
  }

  const json = (event: Record<string, unknown>): void => {
    stderr.write(`${JSON.stringify({ ...event, time: new Date().toISOString() })}\n`)
  }

  const taskJson = (t: TaskState): Record<string, unknown> => ({ phase: t.phase, id: t.id, bytes: t.bytes, total: t.total ?? null, ...(t.detail !== '' ? { detail: t.detail } : {}) })

  const draw = (force: boolean): void => {
    if (live === undefined || closed) return
    const now = Date.now()
    if (!force && now - lastDraw < TTY_EVERY_MS) return
    lastDraw = now
    const running = all.filter(t => !t.ended)
    if (running.length === 0) { live.clear(); return }
    const lines = running.slice(0, TTY_MAX_LINES).map(t => `${name(t)} ${bar(t.bytes, t.total)}${figures(t.bytes, t.total, now - t.start)}${t.detail === '' ? '' : `, ${t.detail}`}`)
    if (running.length > TTY_MAX_LINES) lines.push(`... and ${running.length - TTY_MAX_LINES} more`)
    if (all.length > 1) lines.push(totalLine())
    live(lines.join('\n'))
  }

  const plainLine = (text: string): void => { stderr.write(`${text}\n`); wrotePlain = true }

  const plainTick = (t: TaskState): void => {
    const now = Date.now()
    if (!t.announced && now - t.start >= PLAIN_QUIET_MS) {
      t.announced = true
      plainLine(`${name(t)} started${t.total !== undefined ? `: ${formatBytes(t.total)}` : ''}`)
    }
    if (now - lastPlain < PLAIN_EVERY_MS) return
    lastPlain = now
    plainLine(totalLine())
  }

  const end = (t: TaskState, error?: string): void => {
    t.ended = true
    const took = Date.now() - t.start
    const text = error === undefined
      // A task reported only once done (a blob a registry push or pull names when it is through) has no rate to speak of.
      ? `${name(t)} done: ${formatBytes(t.bytes)}${t.updated ? ` in ${formatDuration(took)} (${formatBytes(rateOf(t.bytes, took))}/s)` : ''}${t.detail === '' ? '' : `, ${t.detail}`}`
      : `${name(t)} failed after ${formatBytes(t.bytes)}: ${error}`
    if (resolved === 'json') json(error === undefined ? { type: 'done', ...taskJson(t), durationMs: took } : { type: 'fail', ...taskJson(t), error })
    else if (resolved === 'plain') { if (t.announced || took >= PLAIN_QUIET_MS) plainLine(text) } else if (live !== undefined && !closed) { live.clear(); stderr.write(`${text}\n`); draw(true) }
  }

  const reporter: ProgressReporter = {
    mode: resolved,
    task: (phase, id, options = {}) => {
      const key = `${phase}\0${id}`
      let t = tasks.get(key)
      if (t === undefined) {
        const now = Date.now()
        if (first === undefined) { first = now; lastPlain = now }
        t = { phase, id, label: cut(options.label ?? shortId(id)), full: options.label ?? shortId(id), total: options.total, bytes: 0, detail: '', start: now, lastJson: now, announced: false, updated: false, ended: false }
        tasks.set(key, t)
        all.push(t)
        if (resolved === 'json') json({ type: 'start', ...taskJson(t), label: t.full })
        else if (resolved === 'tty') draw(true)
      }
      const state = t
      return {
        update: (bytes, total, detail) => {
          if (state.ended) return
          state.updated = true
          state.bytes = bytes
          if (total !== undefined) state.total = total
          if (detail !== undefined) state.detail = detail
          if (resolved === 'json') {
            const now = Date.now()
            if (now - state.lastJson >= JSON_EVERY_MS) { state.lastJson = now; json({ type: 'progress', ...taskJson(state) }) }
          } else if (resolved === 'plain') plainTick(state)
          else draw(false)
        },
        done: (bytes) => {
          if (state.ended) return
          state.bytes = bytes ?? (state.bytes === 0 && state.total !== undefined ? state.total : state.bytes)
          state.total ??= state.bytes
          end(state)
        },
        fail: (error) => {
          if (state.ended) return
          end(state, error)
        }
      }
    },
    note: (text) => {
      if (resolved === 'json') json({ type: 'note', text })
      else if (resolved === 'quiet') { if (notes) stderr.write(`${text}\n`) }
      else if (live !== undefined && !closed) { live.clear(); stderr.write(`${text}\n`); draw(true) } else stderr.write(`${text}\n`)
    },
    print: (text, stream = stdout) => {
      // In JSON, stderr is all events: a line for people there (a build's output, submit's job lines with --json) is a note.
      if (resolved === 'json' && stream === stderr) { json({ type: 'note', text }); return }
      if (live !== undefined && !closed) { live.clear(); stream.write(`${text}\n`); draw(true) } else stream.write(`${text}\n`)
    },
    close: () => {
      if (closed) return
      // Tasks still running when the command ends did not finish (an error on the way out): say so once.
      for (const t of all.filter(t => !t.ended)) end(t, 'did not finish')
      if (all.length > 0) {
        const s = sums()
        if (resolved === 'json') json({ type: 'summary', tasks: all.length, bytes: s.bytes, durationMs: Date.now() - (first ?? Date.now()) })
        else if ((resolved === 'plain' && wrotePlain) || (resolved === 'tty' && all.length > 1)) { live?.clear(); stderr.write(`${totalLine()}\n`) }
      }
      live?.clear()
      closed = true
      all = []
      open.delete(reporter)
    }
  }
  open.add(reporter)
  return reporter
}

/**
 * Ends every open reporter: main.ts calls it before printing an error, so the
 * live block is cleared and a task cut short is said to be, above the error
 * rather than over it.
 */
export function endProgress (): void {
  for (const r of [...open]) r.close()
}
