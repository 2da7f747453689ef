/**
 * The builder's streamed ADD (no sandbox: FROM scratch, ADD, COPY --from):
 * a scratch stage's `ADD archive.tar /` writes its layer from the archive
 * with no snapshot dir until a later step reads the stage; a rebuild is a
 * cache hit without one; and layers written zstd when asked, with keys of
 * their own.
 */
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createBuilder, readContextIgnore } from '../../../src/builder/index.ts'
import type { BuildOptions, BuildResult } from '../../../src/builder/index.ts'
import { openLocalStore } from '../../../src/content/index.ts'
import type { LocalStore } from '../../../src/content/index.ts'
import { parseRecipe } from '../../../src/recipe/index.ts'

let work: string
let ctx: string
let local: LocalStore

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'kiln-scratch-add-'))
  ctx = join(work, 'ctx')
  await mkdir(join(work, 'pack/etc'), { recursive: true })
  await writeFile(join(work, 'pack/etc/hostname'), 'box\n')
  await writeFile(join(work, 'pack/etc/su'), 'su\n', { mode: 0o4755 })
  await mkdir(ctx)
  execFileSync('tar', ['-cf', join(ctx, 'rootfs.tar'), '--owner=0', '--group=0', '-C', join(work, 'pack'), '.'])
  local = await openLocalStore(join(work, 'data'))
})
afterEach(async () => {
  local.close()
  await rm(work, { recursive: true, force: true })
})

const build = async (dockerfile: string, options: Partial<BuildOptions> = {}): Promise<BuildResult> => {
  const builder = createBuilder({ store: local.content, db: local.db, refs: local.refs, workDir: join(work, 'data', 'build') })
  const plan = parseRecipe(dockerfile, { filename: 'Dockerfile' })
  return await builder.build(plan, { contextDir: ctx, contextIgnore: await readContextIgnore(ctx, { recipeFile: join(ctx, 'Dockerfile') }), ...options })
}
const snapshots = async (): Promise<string[]> => (await readdir(join(work, 'data', 'build', 'snapshots'))).filter(n => !n.startsWith('.'))
const layerTypes = async (r: BuildResult): Promise<string[]> => (JSON.parse(Buffer.from(await local.content.readBytes(r.digest)).toString()) as { layers: Array<{ mediaType: string }> }).layers.map(l => l.mediaType)

describe('FROM scratch + ADD archive.tar /', () => {
  it('writes the layer with no snapshot dir, makes it when a later stage reads the files, and is a cache hit on rebuild', async () => {
    const one = await build('FROM scratch\nADD rootfs.tar /\n')
    expect(one.steps.map(s => s.cached)).toEqual([false])
    expect(await snapshots()).toEqual([])
    const again = await build('FROM scratch\nADD rootfs.tar /\n')
    expect(again.steps.map(s => s.cached)).toEqual([true])
    expect(again.digest).toBe(one.digest)
    const copied = await build('FROM scratch AS base\nADD rootfs.tar /\nFROM scratch\nCOPY --from=base /etc/hostname /name\n')
    expect(copied.steps.map(s => s.cached)).toEqual([true, false])
    expect((await snapshots()).length).toBe(2) // the ADD's, made for the COPY, and the COPY's own
  })

  it('gives the same layer through a symlink to the archive (which takes the extracting path) as from the archive itself', async () => {
    const direct = await build('FROM scratch\nADD rootfs.tar /\n')
    await symlink('rootfs.tar', join(ctx, 'linked.tar'))
    const linked = await build('FROM scratch\nADD linked.tar /\n')
    expect(linked.steps.map(s => s.cached)).toEqual([false])
    expect(linked.config.rootfs.diff_ids).toEqual(direct.config.rootfs.diff_ids)
    expect((await snapshots()).length).toBe(1) // the extracting path keeps its upper dir
  })

  it('writes zstd layers when asked, never answered by the gzip ones', async () => {
    const gzip = await build('FROM scratch\nADD rootfs.tar /\n')
    expect(await layerTypes(gzip)).toEqual(['application/vnd.oci.image.layer.v1.tar+gzip'])
    const zstd = await build('FROM scratch\nADD rootfs.tar /\n', { layerCompression: 'zstd' })
    expect(zstd.steps.map(s => s.cached)).toEqual([false])
    expect(await layerTypes(zstd)).toEqual(['application/vnd.oci.image.layer.v1.tar+zstd'])
    expect(zstd.config.rootfs.diff_ids).toEqual(gzip.config.rootfs.diff_ids)
  })
})
