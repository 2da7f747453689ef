/**
 * Scratch that a killed kiln leaves behind, and the sweep that removes it
 * when kiln starts again (`kiln build`, `kiln agent`, `kiln up`, `kiln
 * gateway`).
 *
 * Terms: *scratch* is a temp dir or file kiln makes and normally removes
 * itself; it is *stale* once the process that made it is gone, and only
 * then removed. That is decided in one of three ways:
 * - by an owner tag in its name (src/util/owner.ts: pid + start time), for
 *   the temp dirs named with `scratchPrefix` (src/util/owner.ts): `kiln-*` in the temp dir
 *   (sandbox scratch, proot's status dirs, fetches, exports), half-unpacked
 *   bases (`build/rootfs/*.tmp-@…`), cache imports
 *   (`build/snapshots/.import-@…`), job and gateway build contexts
 *   (`jobs/ctx-@…`, `build/gateway-context-@…`); and snapshots or bases
 *   renamed aside for removal (`.removing-*`, ./snapshots.ts), whoever's;
 * - by the build locks (./build-locks.ts), for the builder's own step and
 *   root dirs under `build/tmp`: removed only while no build runs on the
 *   data dir (listed before that is checked, so a build that starts
 *   meanwhile keeps what it makes);
 * - by pid, for proot's own `proot-<pid>-*` and `prooted-<pid>-*` (proot
 *   picks the names; Debian's build writes them to /tmp whatever
 *   PROOT_TMP_DIR says).
 * Only entries of the current user are touched.
 */
import { lstat, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ownerGone } from '../util/owner.ts'
import { buildRunning } from './build-locks.ts'
import { removeTree } from './sandbox/scratch.ts'

/** Where proot keeps its loader and glue root. */
const PROOT_TMP = '/tmp'
const PROOT_TEMP_RE = /^proot(?:ed)?-(\d+)-[A-Za-z0-9]+$/

function pidAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function mine (path: string): Promise<boolean> {
  const st = await lstat(path).catch(() => undefined)
  const uid = process.getuid?.()
  return st !== undefined && (uid === undefined || st.uid === uid)
}

/** Removes the entries of `dir` that `stale` picks and that belong to this user; returns their paths. */
async function sweepDir (dir: string, stale: (name: string) => boolean): Promise<string[]> {
  const removed: string[] = []
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const path = join(dir, name)
    if (!stale(name) || !await mine(path)) continue
    await removeTree(path).then(() => { removed.push(path) }, () => {})
  }
  return removed
}

/** Removes proot's temp dirs of proot processes that are gone. Cheap: run after every proot step too. */
export async function sweepProotTemp (): Promise<string[]> {
  return await sweepDir(PROOT_TMP, name => {
    const m = PROOT_TEMP_RE.exec(name)
    return m !== null && !pidAlive(Number(m[1]))
  })
}

export interface SweepInit {
  /** The data dir whose build and job scratch is swept. */
  dataDir: string
  /** Default os.tmpdir(). */
  tmpDir?: string
}

/** Removes every stale scratch dir and file; returns their paths. Never throws for what it cannot remove. */
export async function sweepStaleScratch (init: SweepInit): Promise<string[]> {
  const build = join(init.dataDir, 'build')
  const tagged = (name: string): boolean => ownerGone(name)
  const removed = [
    ...await sweepDir(init.tmpDir ?? tmpdir(), name => name.startsWith('kiln-') && tagged(name)),
    ...await sweepProotTemp(),
    ...await sweepDir(join(build, 'rootfs'), name => name.includes('.tmp-') && tagged(name)),
    ...await sweepDir(join(build, 'snapshots'), name => (name.startsWith('.import-') && tagged(name)) || name.startsWith('.removing-')),
    ...await sweepDir(join(build, 'rootfs'), name => name.startsWith('.removing-')),
    ...await sweepDir(build, name => name.startsWith('gateway-context-') && tagged(name)),
    ...await sweepDir(join(init.dataDir, 'jobs'), name => name.startsWith('ctx-') && tagged(name))
  ]
  const tmp = join(build, 'tmp')
  const listed = new Set(await readdir(tmp).catch(() => [] as string[]))
  if (listed.size > 0 && !await buildRunning(build)) removed.push(...await sweepDir(tmp, name => listed.has(name)))
  return removed
}
