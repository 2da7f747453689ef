/**
 * `--progress=json` end to end, as the unprivileged user kiln runs as on a
 * cluster node: every stderr line of `kiln image import` and `kiln image
 * export` is one JSON event (docs/cli.md, "Progress events"), and the events
 * add up to the bytes moved: each stored blob's `done` has its size, the
 * `summary` has their sum, and an export's `done` has the archive's size.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { randomBytes } from 'node:crypto'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { writeLayout } from '../../helpers/oci-layout.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'

interface ProgressEvent { type: string, time: string, phase?: string, id?: string, bytes?: number, total?: number | null, tasks?: number, error?: string }

function events (stderr: string): ProgressEvent[] {
  const lines = stderr.trimEnd().split('\n').filter(l => l !== '')
  // Every line is an event: nothing for people is mixed in.
  return lines.map(l => JSON.parse(l) as ProgressEvent)
}

describe('--progress=json', () => {
  let u: Unprivileged
  let layout: string
  /** Every blob of the layout by digest: what the import must store. */
  const blobs = new Map<string, number>()

  beforeAll(() => {
    u = makeUnprivileged()
    layout = join(u.work, 'layout')
    // Two layers of incompressible bytes, large enough that the store reports them in several chunks.
    writeLayout(layout, [gzipSync(randomBytes(6 * 1024 * 1024), { level: 1 }), gzipSync(randomBytes(2 * 1024 * 1024), { level: 1 })], '1')
    u.give(layout)
    const dir = join(layout, 'blobs', 'sha256')
    for (const hex of readdirSync(dir)) blobs.set(`sha256:${hex}`, statSync(join(dir, hex)).size)
  })
  afterAll(() => { u.cleanup() })

  it('kiln image import: the events of the stored blobs add up to the bytes imported', () => {
    const r = u.kiln(['image', 'import', `oci:${layout}:1`, '-t', 'e2e/progress:1', '--progress=json', '--json'])
    expect(r.status, r.stderr).toBe(0)
    const all = events(r.stderr)
    for (const e of all) expect(Number.isNaN(Date.parse(e.time))).toBe(false)
    const done = all.filter(e => e.type === 'done' && e.phase === 'import')
    expect(new Map(done.map(e => [e.id, e.bytes]))).toEqual(blobs)
    expect(all.filter(e => e.type === 'start').map(e => e.id).sort()).toEqual([...blobs.keys()].sort())
    // Progress of one blob only goes up, and never past its size.
    for (const [digest, size] of blobs) {
      const seen = all.filter(e => e.type === 'progress' && e.id === digest).map(e => e.bytes as number)
      expect([...seen].sort((a, b) => a - b)).toEqual(seen)
      for (const b of seen) expect(b).toBeLessThanOrEqual(size)
    }
    expect(all.filter(e => e.type === 'fail')).toEqual([])
    const summary = all.at(-1)
    expect(summary).toMatchObject({ type: 'summary', tasks: blobs.size, bytes: [...blobs.values()].reduce((a, b) => a + b, 0) })
    // stdout is the command's own JSON, untouched.
    expect(JSON.parse(r.stdout)).toEqual([expect.objectContaining({ name: 'e2e/progress:1' })])
  }, 180_000)

  it('kiln image export: the export task ends with the bytes of the archive written', () => {
    const archive = join(u.work, 'out.tar')
    const r = u.kiln(['image', 'export', 'e2e/progress:1', `oci-archive:${archive}`, '--progress=json'])
    expect(r.status, r.stderr).toBe(0)
    const all = events(r.stderr)
    const done = all.filter(e => e.type === 'done' && e.phase === 'export')
    expect(done).toHaveLength(1)
    expect(done[0]?.bytes).toBe(statSync(archive).size)
    expect(all.at(-1)).toMatchObject({ type: 'summary', tasks: 1, bytes: statSync(archive).size })
  }, 180_000)
})
