/**
 * The build cache across the federation, end to end, as an unprivileged
 * user: build a recipe in data dir A, export A's step cache to a static
 * site, serve it with nginx, import it into data dir B over HTTP (the
 * registry client), build the same recipe in B: no RUN runs, same digest.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { startNginx } from './nginx.ts'
import type { StaticServer } from './nginx.ts'

const BENCH = join(import.meta.dirname, '../../../../shared/bench')

const DOCKERFILE = `FROM oci:LAYOUT:base
RUN mkdir -p /data/many && for i in 1 2 3 4 5 6; do echo "file $i" > /data/many/f$i.txt; done
COPY notes.txt /data/
RUN rm /data/many/f1.txt && cat /data/notes.txt > /data/marker
ENV APP=kiln
CMD ["cat", "/data/marker"]
`

const EXPORT_SCRIPT = `
import { openLocalStore } from 'ROOT/src/content/index.ts'
import { createCacheImage } from 'ROOT/src/cache/index.ts'
import { createExporter, parseOutputSpec } from 'ROOT/src/export/index.ts'
const [dataDir, site] = process.argv.slice(2)
const local = await openLocalStore(dataDir)
const { descriptor, records } = await createCacheImage(local.db, local.content, { mode: 'max' })
await createExporter().export({ store: local.content, root: descriptor }, parseOutputSpec('type=static,dest=' + site + ',name=cache/app:buildcache'))
local.close()
console.log(JSON.stringify({ records }))
`

const IMPORT_SCRIPT = `
import { join } from 'node:path'
import { openLocalStore } from 'ROOT/src/content/index.ts'
import { fetchCacheImage, importCacheImage } from 'ROOT/src/cache/index.ts'
const [dataDir, ref] = process.argv.slice(2)
const local = await openLocalStore(dataDir)
const root = await fetchCacheImage(local.content, ref)
const result = await importCacheImage(local.db, local.content, root, { snapshotsDir: join(dataDir, 'build', 'snapshots') })
local.close()
console.log(JSON.stringify(result))
`

interface BuildJson { digest: string, steps: number, cachedSteps: number, stepReports: Array<{ op: string, cached: boolean }> }

describe.skipIf(!haveTools('setpriv', 'busybox', 'nginx', 'mknod'))('build cache shared between two agents through a static site', () => {
  let u: Unprivileged
  let server: StaticServer | undefined
  let ctx: string
  let site: string

  const build = (dataDir: string): BuildJson => {
    const r = u.kiln(['build', '--json', ctx], { dataDir, timeoutMs: 180_000 })
    expect(r.status, r.stderr).toBe(0)
    return JSON.parse(r.stdout) as BuildJson
  }
  const script = (name: string, text: string): string => {
    const path = join(u.work, name)
    writeFileSync(path, text.replaceAll('ROOT', u.root))
    u.give(path)
    return path
  }
  const node = (): string => join(u.root, 'node_modules/.bin/node')

  beforeAll(() => {
    u = makeUnprivileged()
    const layout = join(u.work, 'layout')
    execFileSync('sh', [join(BENCH, 'make-busybox-base.sh'), layout], { stdio: 'ignore' })
    ctx = join(u.work, 'ctx')
    mkdirSync(ctx)
    writeFileSync(join(ctx, 'Dockerfile'), DOCKERFILE.replaceAll('LAYOUT', layout))
    writeFileSync(join(ctx, 'notes.txt'), 'notes from the context\n')
    site = join(u.work, 'site')
    u.give(u.work)
  }, 120_000)
  afterAll(async () => {
    await server?.stop()
    u?.cleanup()
  })

  it('B builds from A\'s exported cache without running a step, to the same digest', async () => {
    const dataA = join(u.work, 'data-a')
    const dataB = join(u.work, 'data-b')
    mkdirSync(dataA); mkdirSync(dataB); u.give(dataA); u.give(dataB)

    const a = build(dataA)
    expect(a.stepReports.filter(s => s.op === 'run').map(s => s.cached)).toEqual([false, false])

    const exported = u.exec(node(), [script('export-cache.ts', EXPORT_SCRIPT), dataA, site])
    expect(exported.status, exported.stderr).toBe(0)
    expect((JSON.parse(exported.stdout) as { records: number }).records).toBeGreaterThanOrEqual(3) // two RUN and one COPY layer

    server = await startNginx(site)
    const imported = u.exec(node(), [script('import-cache.ts', IMPORT_SCRIPT), dataB, `docker://${server.hostPort}/cache/app:buildcache`])
    expect(imported.status, imported.stderr).toBe(0)
    const result = JSON.parse(imported.stdout) as { added: number, snapshots: { created: number, unsupported: number } }
    expect(result.added).toBeGreaterThanOrEqual(3)
    expect(result.snapshots.unsupported).toBe(0)

    const b = build(dataB)
    expect(b.stepReports.filter(s => s.op === 'run').map(s => s.cached)).toEqual([true, true])
    expect(b.cachedSteps).toBe(b.steps)
    expect(b.digest).toBe(a.digest)

    // Control: a third data dir without the import runs every step.
    const dataC = join(u.work, 'data-c')
    mkdirSync(dataC); u.give(dataC)
    const c = build(dataC)
    expect(c.stepReports.filter(s => s.op === 'run').map(s => s.cached)).toEqual([false, false])
    expect(c.digest).toBe(a.digest)
  })
})
