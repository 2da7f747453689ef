import { describe, it, expect, afterEach, vi } from 'vitest'
import { Writable } from 'node:stream'
import { createProgress, endProgress, figures, parseProgressMode } from '../../../src/cli/progress.ts'
import type { ProgressReporter } from '../../../src/cli/progress.ts'
import { onBuild, onFetch } from '../../../src/cli/progress-sources.ts'

const MiB = 1024 * 1024
const DIGEST_A = `sha256:${'a'.repeat(64)}`
const DIGEST_B = `sha256:${'b'.repeat(64)}`

function sink (isTTY: boolean): Writable & { isTTY: boolean, columns: number, rows: number, text: () => string } {
  let text = ''
  const w = new Writable({ write (chunk: Buffer, _enc, cb) { text += chunk.toString(); cb() } })
  return Object.assign(w, { isTTY, columns: 120, rows: 40, text: () => text })
}

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g

afterEach(() => { vi.useRealTimers() })

/** Two layers, 4 MiB and 8 MiB, each reported every 100 ms at 1 MiB/s, the second starting 1 s after the first. */
function run (progress: ProgressReporter): void {
  vi.setSystemTime(0)
  const a = progress.task('pull', DIGEST_A, { total: 4 * MiB })
  vi.setSystemTime(1000)
  const b = progress.task('pull', DIGEST_B, { total: 8 * MiB })
  for (let t = 1; t <= 90; t++) {
    vi.setSystemTime(1000 + t * 100)
    if (t <= 30) a.update(MiB + t * MiB / 10)
    if (t === 30) a.done()
    b.update(Math.min(8 * MiB, t * MiB / 10))
    // The callbacks of src/transfer report by digest: the same task comes back.
    progress.task('pull', DIGEST_B).update(Math.min(8 * MiB, t * MiB / 10))
  }
  b.done()
  progress.close()
}

describe('progress reporter', () => {
  it('figures: bytes, labelled rate, ETA from the average rate', async () => {
    expect(figures(10 * MiB, 100 * MiB, 2000)).toBe('10.0 MiB/100 MiB, 5.0 MiB/s, ETA 18.0s')
    expect(figures(3 * MiB, undefined, 1000)).toBe('3.0 MiB, 3.0 MiB/s')
    expect(figures(0, 100, 1000)).toBe('0 B/100 B, 0 B/s, ETA unknown')
    expect(figures(10, 100 * MiB, 20)).toBe('10 B/100 MiB, 500 B/s')
  })

  it('parses --progress and refuses an unknown mode, naming the modes', async () => {
    expect(parseProgressMode(undefined)).toBe('auto')
    expect(parseProgressMode('json')).toBe('json')
    expect(() => parseProgressMode('fancy')).toThrow(/auto, tty, plain, json, quiet/)
  })

  it('auto is tty on a terminal, plain elsewhere, quiet for a command printing --json', async () => {
    expect((await createProgress('auto', { stderr: sink(true) })).mode).toBe('tty')
    expect((await createProgress('auto', { stderr: sink(false) })).mode).toBe('plain')
    // A command printing --json is read by a script: no progress unless asked for.
    expect((await createProgress('auto', { stderr: sink(true), json: true })).mode).toBe('quiet')
    expect((await createProgress('json', { stderr: sink(true), json: true })).mode).toBe('json')
  })

  it('on a terminal redraws a block in place, per task and in total, and leaves one line per finished task', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const err = sink(true)
    run(await createProgress('tty', { stderr: err, stdout: sink(true) }))
    const raw = err.text()
    expect(raw).toMatch(ANSI)
    const plain = raw.replace(ANSI, '')
    // A running task's line: phase, short digest, bar, bytes, rate, ETA.
    expect(plain).toMatch(/pull aaaaaaaaaaaa \[=+ *\] +\d+% [\d.]+ MiB\/4\.0 MiB, [\d.]+ MiB\/s, ETA [\d.]+s/)
    expect(plain).toMatch(/pull bbbbbbbbbbbb \[=* *\] +\d+% [\d.]+ [KM]iB\/8\.0 MiB, [\d.]+ [KM]iB\/s, ETA [\d.]+s/)
    // The total of both: 12 MiB.
    expect(plain).toMatch(/total: 0\/2 done, [\d.]+ MiB\/12\.0 MiB, [\d.]+ MiB\/s, ETA/)
    expect(plain).toContain('pull aaaaaaaaaaaa done: 4.0 MiB in 4.0s (1.0 MiB/s)')
    expect(plain).toContain('pull bbbbbbbbbbbb done: 8.0 MiB in 9.0s')
    expect(plain).toMatch(/total: 2\/2 done, 12\.0 MiB\/12\.0 MiB/)
    // Redraws are throttled: 90 ticks of 100 ms, each reporting twice, draw far fewer than 180 frames.
    expect(raw.split('pull bbbbbbbbbbbb [').length - 1).toBeLessThanOrEqual(95)
  })

  it('prints through the live block without tearing it: the line lands whole, then the block comes back', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(0)
    const err = sink(true)
    const out = sink(true)
    const p = await createProgress('tty', { stderr: err, stdout: out })
    const t = p.task('layer', 'step 3', { label: 'step 3' })
    t.update(MiB)
    const before = err.text().length
    p.print('STEP 4/5: RUN make')
    expect(out.text()).toBe('STEP 4/5: RUN make\n')
    expect(err.text().slice(before).replace(ANSI, '')).toContain('layer step 3')
    t.done()
    p.close()
  })

  it('off a terminal writes lines that never repeat: task start and end, a total at most every 5 s', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const err = sink(false)
    run(await createProgress('plain', { stderr: err }))
    const text = err.text()
    expect(text).not.toMatch(/[\r\x1b]/)
    const lines = text.trimEnd().split('\n')
    expect(new Set(lines).size).toBe(lines.length)
    expect(lines.filter(l => l.includes(' started: '))).toEqual(['pull aaaaaaaaaaaa started: 4.0 MiB', 'pull bbbbbbbbbbbb started: 8.0 MiB'])
    expect(lines.filter(l => l.includes(' done: '))).toHaveLength(2)
    // 10 s of reports: total lines at 5 s and 10 s, and the final one at close.
    const totals = lines.filter(l => l.startsWith('total: '))
    expect(totals).toHaveLength(3)
    expect(totals[0]).toMatch(/^total: 1\/2 done, [\d.]+ MiB\/12\.0 MiB, [\d.]+ MiB\/s, ETA [\d.]+s$/)
    expect(totals[2]).toMatch(/^total: 2\/2 done, 12\.0 MiB\/12\.0 MiB, /)
  })

  it('off a terminal a short task adds nothing, nor a total', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(0)
    const err = sink(false)
    const p = await createProgress('plain', { stderr: err })
    const t = p.task('import', DIGEST_A, { total: MiB })
    vi.setSystemTime(500)
    t.update(MiB / 2)
    vi.setSystemTime(900)
    t.done()
    p.close()
    expect(err.text()).toBe('')
  })

  it('json: one parseable event per line, whose done bytes add up to the summary', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const err = sink(false)
    const p = await createProgress('json', { stderr: err })
    p.note('looking for peers (mDNS on the local network)...')
    run(p)
    const events = err.text().trimEnd().split('\n').map(l => JSON.parse(l) as Record<string, unknown>)
    for (const e of events) expect(typeof e.time).toBe('string')
    expect(events[0]).toMatchObject({ type: 'note', text: 'looking for peers (mDNS on the local network)...' })
    const starts = events.filter(e => e.type === 'start')
    expect(starts).toEqual([
      expect.objectContaining({ phase: 'pull', id: DIGEST_A, label: 'aaaaaaaaaaaa', bytes: 0, total: 4 * MiB }),
      expect.objectContaining({ phase: 'pull', id: DIGEST_B, total: 8 * MiB })
    ])
    const progress = events.filter(e => e.type === 'progress' && e.id === DIGEST_B)
    // 9 s of reports every 100 ms, one event a second at most.
    expect(progress.length).toBeGreaterThanOrEqual(8)
    expect(progress.length).toBeLessThanOrEqual(10)
    const done = events.filter(e => e.type === 'done')
    expect(done.map(e => e.bytes)).toEqual([4 * MiB, 8 * MiB])
    const summary = events.at(-1) as Record<string, unknown>
    expect(summary).toMatchObject({ type: 'summary', tasks: 2, bytes: 12 * MiB })
  })

  it('json: a line printed for stderr is a note event, a line for stdout stays a line', async () => {
    const err = sink(false)
    const out = sink(false)
    const p = await createProgress('json', { stderr: err, stdout: out })
    p.print('[linux/amd64] offer from 12D3KooW...', err)
    p.print('built sha256:abc')
    expect(out.text()).toBe('built sha256:abc\n')
    expect(JSON.parse(err.text())).toMatchObject({ type: 'note', text: '[linux/amd64] offer from 12D3KooW...' })
  })

  it('a task failed, or still running at close, ends with a fail event', async () => {
    const err = sink(false)
    const p = await createProgress('json', { stderr: err })
    p.task('fetch', DIGEST_A, { total: 10 }).update(4)
    p.task('fetch', DIGEST_B, { total: 10 }).fail('peer went away')
    p.close()
    const events = err.text().trimEnd().split('\n').map(l => JSON.parse(l) as Record<string, unknown>)
    expect(events.filter(e => e.type === 'fail').map(e => [e.id, e.error, e.bytes])).toEqual([[DIGEST_B, 'peer went away', 0], [DIGEST_A, 'did not finish', 4]])
  })

  it('endProgress, before an error is printed, clears the live block and says which task did not finish', async () => {
    const err = sink(true)
    const p = await createProgress('tty', { stderr: err })
    p.task('pull', DIGEST_A, { total: 10 * MiB }).update(MiB)
    endProgress()
    const after = err.text().length
    err.write('kiln: error: peer went away\n')
    // Closed: nothing more is drawn over the error.
    p.task('pull', DIGEST_B, { total: 10 }).update(5)
    p.close()
    expect(err.text().slice(after)).toBe('kiln: error: peer went away\n')
    expect(err.text().replace(ANSI, '')).toContain('pull aaaaaaaaaaaa failed after 1.0 MiB: did not finish')
  })

  it('a task reported only when done gets no rate', async () => {
    const err = sink(true)
    const p = await createProgress('tty', { stderr: err })
    p.task('export', DIGEST_A, { total: 3 * MiB }).done()
    p.close()
    expect(err.text().replace(ANSI, '')).toContain('export aaaaaaaaaaaa done: 3.0 MiB\n')
  })

  it('quiet says nothing', async () => {
    const err = sink(false)
    const p = await createProgress('quiet', { stderr: err })
    p.note('looking for peers...')
    p.task('pull', DIGEST_A, { total: 10 }).done()
    p.close()
    expect(err.text()).toBe('')
  })

  it('quiet because of --json still writes notes, and only them', async () => {
    const err = sink(false)
    const p = await createProgress('auto', { stderr: err, json: true })
    p.note('looking for peers...')
    p.task('pull', DIGEST_A, { total: 10 }).done()
    p.close()
    expect(err.text()).toBe('looking for peers...\n')
  })
})

describe('progress sources', () => {
  const parse = (text: string): Array<Record<string, unknown>> => text.trimEnd().split('\n').map(l => JSON.parse(l) as Record<string, unknown>)

  it('a fetch report becomes its blob\'s task, ended when every byte is held', async () => {
    const err = sink(false)
    const p = await createProgress('json', { stderr: err })
    const report = onFetch(p, 'fetch')
    report({ digest: DIGEST_A, size: 100, bytes: 40, peers: 2 })
    report({ digest: DIGEST_A, size: 100, bytes: 100, peers: 1 })
    // A late report of a finished blob starts nothing again.
    report({ digest: DIGEST_A, size: 100, bytes: 100, peers: 1 })
    p.close()
    const events = parse(err.text())
    expect(events.map(e => e.type)).toEqual(['start', 'done', 'summary'])
    expect(events[1]).toMatchObject({ phase: 'fetch', id: DIGEST_A, bytes: 100, total: 100, detail: 'from 1 peer' })
  })

  it('a layer compressed has no total until it is done, then its size', async () => {
    const err = sink(false)
    const p = await createProgress('json', { stderr: err })
    const report = onBuild(p)
    report({ what: 'layer', id: DIGEST_B, label: 'RUN make', bytes: 10, done: false })
    report({ what: 'layer', id: DIGEST_B, label: 'RUN make', bytes: 50, total: 50, done: true })
    p.close()
    const events = parse(err.text())
    expect(events[0]).toMatchObject({ type: 'start', phase: 'layer', label: 'RUN make', total: null })
    expect(events[1]).toMatchObject({ type: 'done', phase: 'layer', bytes: 50, total: 50 })
  })
})
