/**
 * Privacy of a local build, end to end as an unprivileged user (uid 65534
 * when the tests run as root), with umask 000: the data dir holds nothing
 * group or others may use but image content under 0700 dirs; an old 0755
 * data dir is reported by kiln doctor and fixed by the next command; and
 * `kiln build` leaves what .dockerignore excludes out of `COPY . /ctx`
 * without opening it (a secret and a 2 GiB sparse file that, as root
 * 0600, the user could not even read).
 */
import { execFileSync } from 'node:child_process'
import { chmodSync, chownSync, closeSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync, ftruncateSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import { extract } from 'tar-stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tooOpenIn } from '../../helpers/private-tree.ts'
import { haveTools } from '../../helpers/tools.ts'
import { isRoot, makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { KilnRun, Unprivileged } from '../../helpers/unprivileged.ts'

const BENCH = join(import.meta.dirname, '../../../../shared/bench')
const GiB = 1024 ** 3

interface DoctorJson { checks: Array<{ id: string, status: string, detail: string, fix?: string }> }

describe.skipIf(!haveTools('setpriv', 'umoci', 'busybox'))('a private data dir and .dockerignore, as an unprivileged user with umask 000', () => {
  let u: Unprivileged
  let layout: string
  let ctx: string

  /** kiln as the user, under umask 000. */
  const kiln = (args: string[]): KilnRun => u.exec('sh', ['-c', 'umask 000; exec "$@"', 'sh', join(u.root, 'node_modules/.bin/node'), join(u.root, 'src/cli/kiln.mjs'), ...args], { timeoutMs: 300_000 })

  const doctorCheck = (): DoctorJson['checks'][number] | undefined => {
    const r = kiln(['doctor', '--json'])
    return (JSON.parse(r.stdout) as DoctorJson).checks.find(c => c.id === 'datadir.private')
  }

  beforeAll(() => {
    u = makeUnprivileged()
    layout = join(u.work, 'layout')
    execFileSync('sh', [join(BENCH, 'make-busybox-base.sh'), layout], { stdio: 'ignore' })
    u.give(layout)
    ctx = join(u.work, 'ctx')
    mkdirSync(join(ctx, 'src'), { recursive: true })
    writeFileSync(join(ctx, 'Dockerfile'), `FROM oci:${layout}:base\nRUN echo built > /built\nCOPY . /ctx\n`)
    writeFileSync(join(ctx, '.dockerignore'), 'secret.env\nbig.bin\n')
    writeFileSync(join(ctx, 'src', 'app.txt'), 'app\n')
    u.give(ctx)
    // Given after: root's 0600 files, which kiln as another user could not open even by mistake.
    writeFileSync(join(ctx, 'secret.env'), 'TOKEN=hunter2\n', { mode: 0o600 })
    const fd = openSync(join(ctx, 'big.bin'), 'w', 0o600)
    ftruncateSync(fd, 2 * GiB)
    closeSync(fd)
    if (!isRoot()) return
    chownSync(join(ctx, 'secret.env'), 0, 0)
    chownSync(join(ctx, 'big.bin'), 0, 0)
  }, 120_000)
  afterAll(() => { u?.cleanup() })

  it('imports and builds leaving nothing in the data dir that others may use, and COPY . without the excluded files', async () => {
    const imported = kiln(['image', 'import', `oci:${layout}:base`, '-t', 'e2e/base:1'])
    expect(imported.status, imported.stderr).toBe(0)
    const out = join(u.work, 'out')
    const started = Date.now()
    const built = kiln(['build', '--json', '-t', 'e2e/private:1', '--output', `oci-layout:${out}`, ctx])
    const ms = Date.now() - started
    expect(built.status, built.stderr).toBe(0)
    console.log(`kiln build (RUN + COPY . beside an excluded 2 GiB file) as uid ${u.uid}: ${ms} ms`)
    for (const args of [['key', 'show'], ['trust', 'init-root', '--institution', 'uni-e2e']]) {
      const r = kiln(args)
      expect(r.status, r.stderr).toBe(0)
    }

    expect(await tooOpenIn(u.dataDir)).toEqual([])
    expect(statSync(u.dataDir).mode & 0o777).toBe(0o700)
    for (const d of ['build', 'build/rootfs', 'build/snapshots', 'store/blobs/sha256']) expect([d, statSync(join(u.dataDir, d)).mode & 0o777]).toEqual([d, 0o700])
    for (const f of ['kiln.db', 'identity.key', 'trust/root.key', 'trust/root.pub.yaml']) expect([f, statSync(join(u.dataDir, f)).mode & 0o777]).toEqual([f, 0o600])

    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
    const manifest = JSON.parse(readFileSync(join(out, 'blobs/sha256', (index.manifests[0]?.digest ?? '').slice(7)), 'utf8')) as { layers: Array<{ digest: string }> }
    const last = manifest.layers[manifest.layers.length - 1]?.digest ?? ''
    const names: string[] = []
    const x = extract()
    const listing = (async () => { for await (const e of x) { names.push(e.header.name); e.resume() } })()
    await pipeline(Readable.from([readFileSync(join(out, 'blobs/sha256', last.slice(7)))]), createGunzip(), x)
    await listing
    expect(names.sort()).toEqual(['ctx/', 'ctx/.dockerignore', 'ctx/Dockerfile', 'ctx/src/', 'ctx/src/app.txt'])
  })

  it('reports an old 0755 data dir and 0644 database in kiln doctor, and fixes them at the next command', () => {
    chmodSync(u.dataDir, 0o755)
    chmodSync(join(u.dataDir, 'kiln.db'), 0o644)
    const before = doctorCheck()
    expect(before?.status).toBe('warn')
    expect(before?.detail).toContain(`data dir ${u.dataDir} is 0755`)
    expect(before?.detail).toContain(`${join(u.dataDir, 'kiln.db')} is 0644`)
    expect(statSync(u.dataDir).mode & 0o777).toBe(0o755) // doctor only looks

    const df = kiln(['store', 'df'])
    expect(df.status, df.stderr).toBe(0)
    expect(df.stderr).toContain(`data dir ${u.dataDir} is 0755: other users of this node can enter it; made it 0700`)
    expect(df.stderr).toContain(`kiln.db is 0644: other users of this node can read it; made it 0600`)
    expect(statSync(u.dataDir).mode & 0o777).toBe(0o700)
    expect(statSync(join(u.dataDir, 'kiln.db')).mode & 0o777).toBe(0o600)
    expect(kiln(['store', 'df']).stderr).not.toContain('made it')
    expect(doctorCheck()?.status).toBe('ok')
  })
})
