import { describe, it, expect, afterEach, vi } from 'vitest'
import { Writable } from 'node:stream'
import { createOutput, progressFigures } from '../../../src/cli/output.ts'

const MiB = 1024 * 1024

function sink (isTTY: boolean): Writable & { isTTY: boolean, text: () => string } {
  let text = ''
  const w = new Writable({ write (chunk: Buffer, _enc, cb) { text += chunk.toString(); cb() } })
  return Object.assign(w, { isTTY, text: () => text })
}

afterEach(() => { vi.useRealTimers() })

describe('progress', () => {
  it('labels the rate and gives an ETA from the average rate', () => {
    expect(progressFigures(10 * MiB, 100 * MiB, 2000)).toBe('10.0 MiB/100 MiB, 5.0 MiB/s, ETA 18.0s')
    expect(progressFigures(100 * MiB, 100 * MiB, 2000)).toBe('100 MiB/100 MiB, 50.0 MiB/s')
    expect(progressFigures(3 * MiB, undefined, 1000)).toBe('3.0 MiB, 3.0 MiB/s')
    expect(progressFigures(0, 100, 1000)).toBe('0 B/100 B, 0 B/s, ETA unknown')
  })

  it('off a terminal writes one line per 5 s at most, across bars, and nothing for a short bar', () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(0)
    const err = sink(false)
    const out = createOutput(sink(false), err)
    const quick = out.progress('quick', 10)
    for (let i = 1; i <= 10; i++) quick.update(i)
    quick.done()
    expect(err.text()).toBe('')
    const long = out.progress('layer', 100 * MiB)
    for (let t = 1; t <= 120; t++) { vi.setSystemTime(t * 100); long.update(t * MiB / 2, 'from 2 peers') }
    vi.setSystemTime(13_000)
    long.update(100 * MiB)
    long.done()
    const lines = err.text().trimEnd().split('\n')
    // 12 s of updates every 100 ms: lines at 5 s and 10 s, then the final one; never the same line twice.
    expect(lines).toHaveLength(3)
    expect(new Set(lines).size).toBe(3)
    expect(lines[0]).toMatch(/^layer \[=+ *\] +25% 25.0 MiB\/100 MiB, 5.0 MiB\/s, ETA 15.0s, from 2 peers$/)
    expect(lines[2]).toMatch(/^layer \[=+\] 100% 100 MiB\/100 MiB, [\d.]+ MiB\/s, from 2 peers$/)
    expect(err.text()).not.toContain('\r')
  })

  it('on a terminal redraws one line in place and ends it once', () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(0)
    const err = sink(true)
    const bar = createOutput(sink(true), err).progress('base', 4 * MiB)
    for (let t = 1; t <= 4; t++) { vi.setSystemTime(t * 1000); bar.update(t * MiB) }
    bar.done()
    expect(err.text().split('\n')).toHaveLength(2)
    expect(err.text()).toMatch(/\r\x1b\[Kbase \[=+ *\] +25% 1.0 MiB\/4.0 MiB, 1.0 MiB\/s, ETA 3.0s/)
  })
})
