/**
 * Owner tags, build locks, the start-up sweep of stale scratch and scratch
 * dir claims: what a dead process left goes, what a live one holds stays.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { buildRunning, holdBuildLock } from '../../../src/builder/build-locks.ts'
import { sweepStaleScratch } from '../../../src/builder/stale-scratch.ts'
import { ownerGone, ownerTag, processStart, scratchPrefix } from '../../../src/util/owner.ts'
import { claimScratchDir } from '../../../src/util/scratch-claims.ts'

const made: string[] = []
afterEach(() => { for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true }) })
const dir = (): string => { const d = mkdtempSync(join(tmpdir(), 'kiln-test-sweep-')); made.push(d); return d }

/** The tag a process that has exited had (its pid is free again). */
function deadTag (): string {
  const r = spawnSync('true')
  return `@${r.pid}.${processStart(process.pid) ?? '0'}`
}

describe('owner tags', () => {
  it('say a live process is alive, and an exited one or a reused pid (other start time) is gone', () => {
    expect(ownerTag()).toMatch(/^@\d+\.\d+$/)
    expect(ownerGone(`x-${ownerTag()}-y`)).toBe(false)
    expect(ownerGone(`x-${deadTag()}-y`)).toBe(true)
    expect(ownerGone(`x-@${process.pid}.1-y`)).toBe(true)
    expect(ownerGone('kiln-no-tag-here')).toBe(false)
    expect(scratchPrefix('kiln-sbx-')).toBe(`kiln-sbx-${ownerTag()}-`)
  })
})

describe('build locks', () => {
  it('are held while a build runs, and a dead process\'s lock counts for nothing and is removed', async () => {
    const work = dir()
    expect(await buildRunning(work)).toBe(false)
    mkdirSync(join(work, 'locks'))
    writeFileSync(join(work, 'locks', `${deadTag()}-abc`), '')
    expect(await buildRunning(work)).toBe(false)
    expect(readdirSync(join(work, 'locks'))).toEqual([])
    const lock = await holdBuildLock(work)
    expect(await buildRunning(work)).toBe(true)
    await lock.release()
    await lock.release()
    expect(await buildRunning(work)).toBe(false)
  })
})

describe('sweepStaleScratch', () => {
  it('removes what dead processes left and keeps what live ones hold', async () => {
    const data = dir()
    const tmp = dir()
    const dead = deadTag()
    const live = ownerTag()
    const paths = {
      deadSbx: join(tmp, `kiln-sbx-${dead}-AbC123`),
      liveSbx: join(tmp, `kiln-sbx-${live}-AbC123`),
      untagged: join(tmp, 'kiln-something-else'),
      notOurs: join(tmp, `other-${dead}-x`),
      deadBase: join(data, 'build/rootfs', `abcd-1000.tmp-${dead}-17`),
      liveBase: join(data, 'build/rootfs', `abcd-1000.tmp-${live}-17`),
      base: join(data, 'build/rootfs', 'abcd-1000'),
      deadImport: join(data, 'build/snapshots', `.import-${dead}-ff`),
      snapshot: join(data, 'build/snapshots', 'k-abcd'),
      deadContext: join(data, 'build', `gateway-context-${dead}-x1`),
      deadJob: join(data, 'jobs', `ctx-${dead}-x1`),
      liveJob: join(data, 'jobs', `ctx-${live}-x1`),
      step: join(data, 'build/tmp', 'step-q1'),
      root: join(data, 'build/tmp', 'root-q2')
    }
    for (const p of Object.values(paths)) mkdirSync(join(p, 'inner'), { recursive: true })
    // A build is running: the builder's own dirs stay.
    const lock = await holdBuildLock(join(data, 'build'))
    // proot's own temp dirs are in the real /tmp: another test's dead proot may be swept too, and is not this test's business.
    const removed = (await sweepStaleScratch({ dataDir: data, tmpDir: tmp })).filter(p => p.startsWith(tmp) || p.startsWith(data))
    expect(removed.sort()).toEqual([paths.deadSbx, paths.deadBase, paths.deadImport, paths.deadContext, paths.deadJob].sort())
    for (const p of [paths.liveSbx, paths.untagged, paths.notOurs, paths.liveBase, paths.base, paths.snapshot, paths.liveJob, paths.step, paths.root]) expect(existsSync(p), p).toBe(true)
    // No build runs any more: build/tmp is scratch of builds that are gone.
    await lock.release()
    expect((await sweepStaleScratch({ dataDir: data, tmpDir: tmp })).filter(p => p.startsWith(tmp) || p.startsWith(data)).sort()).toEqual([paths.step, paths.root].sort())
    expect(readdirSync(join(data, 'build/tmp'))).toEqual([])
  })
})

describe('claimScratchDir', () => {
  it('empties a dir whose claimants are all gone, and leaves one a live process claims alone', async () => {
    const uploads = dir()
    writeFileSync(join(uploads, 'a1b2-session'), 'partial upload')
    mkdirSync(join(uploads, '.claims'))
    writeFileSync(join(uploads, '.claims', deadTag()), '')
    expect(await claimScratchDir(uploads)).toEqual([join(uploads, 'a1b2-session')])
    expect(readdirSync(join(uploads, '.claims'))).toEqual([ownerTag()])
    // Another live process (the test's parent stands in for it) claims the dir: nothing goes.
    const other = `@${process.ppid}.${processStart(process.ppid) ?? '0'}`
    writeFileSync(join(uploads, '.claims', other), '')
    writeFileSync(join(uploads, 'c3d4-session'), 'in use')
    expect(await claimScratchDir(uploads)).toEqual([])
    expect(existsSync(join(uploads, 'c3d4-session'))).toBe(true)
  })
})
