/**
 * The builder and the context filter (no sandbox: FROM scratch and COPY):
 * COPY . sees exactly the entries `kiln submit` packs, an excluded 2 GiB
 * sparse file is neither read nor copied, excluded files are not in the
 * step cache key, and naming an excluded file is "not found".
 */
import { mkdir, mkdtemp, open, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import { extract } from 'tar-stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createBuilder, readContextIgnore } from '../../../src/builder/index.ts'
import type { BuildProgress, BuildResult } from '../../../src/builder/index.ts'
import { openLocalStore } from '../../../src/content/index.ts'
import type { LocalStore } from '../../../src/content/index.ts'
import { parseRecipe } from '../../../src/recipe/index.ts'
import { packContext } from '../../../src/requester/context-pack.ts'

let work: string
let ctx: string
let local: LocalStore

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'kiln-ctx-build-'))
  ctx = join(work, 'ctx')
  local = await openLocalStore(join(work, 'data'))
})
afterEach(async () => {
  local.close()
  await rm(work, { recursive: true, force: true })
})

const files = async (entries: Record<string, string>): Promise<void> => {
  for (const [path, text] of Object.entries(entries)) {
    await mkdir(join(ctx, path, '..'), { recursive: true })
    await writeFile(join(ctx, path), text)
  }
}

const build = async (dockerfile: string, recipeFile = join(ctx, 'Dockerfile')): Promise<BuildResult> => {
  const builder = createBuilder({ store: local.content, db: local.db, refs: local.refs, workDir: join(work, 'data', 'build') })
  const plan = parseRecipe(dockerfile, { filename: 'Dockerfile' })
  return await builder.build(plan, { contextDir: ctx, contextIgnore: await readContextIgnore(ctx, { recipeFile }) })
}

async function tarNames (source: AsyncIterable<Uint8Array>, gzipped: boolean): Promise<string[]> {
  const x = extract()
  const names: string[] = []
  const done = (async () => { for await (const e of x) { names.push(e.header.name.replace(/\/$/, '')); e.resume() } })()
  await (gzipped ? pipeline(Readable.from(source), createGunzip(), x) : pipeline(Readable.from(source), x))
  await done
  return names.sort()
}

/** Paths in the image's last layer. */
async function layerNames (result: BuildResult): Promise<string[]> {
  const manifest = JSON.parse(Buffer.from(await local.content.readBytes(result.digest)).toString()) as { layers: Array<{ digest: `sha256:${string}` }> }
  const layer = manifest.layers[manifest.layers.length - 1]
  if (layer === undefined) throw new Error('no layer')
  return await tarNames(local.content.read(layer.digest), true)
}

const GiB = 1024 ** 3

describe('the context a local build sees', () => {
  it('COPY . gets exactly what the context tar holds, without the excluded 2 GiB file and secret', async () => {
    await files({
      Dockerfile: 'FROM scratch\nCOPY . /ctx/\n', 'secret.env': 'TOKEN=hunter2\n', 'src/main.c': 'int main(){}\n',
      'logs/a.log': 'a', 'logs/keep/important.log': 'k', 'docs/README.md': 'r', 'docs/notes.md': 'n',
      '.dockerignore': '# not for the image\nsecret.env\nbig.bin\nlogs\n!logs/keep\n*/*.md\n!docs/README.md\n'
    })
    await symlink('src/main.c', join(ctx, 'link'))
    const big = await open(join(ctx, 'big.bin'), 'w')
    await big.truncate(2 * GiB)
    await big.close()

    const started = performance.now()
    const result = await build('FROM scratch\nCOPY . /ctx/\n')
    const ms = performance.now() - started
    console.log(`COPY . of a context with an excluded 2 GiB sparse file: ${ms.toFixed(0)} ms`)
    const packed = (await tarNames(packContext(ctx, { recipeFile: join(ctx, 'Dockerfile') }), false)).map(n => `ctx/${n}`)
    const built = (await layerNames(result)).filter(n => n !== 'ctx')
    expect(built).toEqual(packed)
    expect(built).toEqual(['ctx/.dockerignore', 'ctx/Dockerfile', 'ctx/docs', 'ctx/docs/README.md', 'ctx/link', 'ctx/logs', 'ctx/logs/keep', 'ctx/logs/keep/important.log', 'ctx/src', 'ctx/src/main.c'])
    // Hashing and compressing 2 GiB takes tens of seconds; skipping it, well under one.
    expect(ms).toBeLessThan(5_000)
  })

  it('leaves excluded files out of the step cache key, but not included ones', async () => {
    await files({ 'secret.env': 'v1', 'app/main.c': 'v1', 'app/secret.env': 'v1', '.dockerignore': '**/secret.env\n' })
    const recipe = 'FROM scratch\nCOPY . /ctx/\nCOPY app /app/\n'
    const first = await build(recipe)
    await writeFile(join(ctx, 'secret.env'), 'v2')
    await writeFile(join(ctx, 'app', 'secret.env'), 'v2')
    const again = await build(recipe)
    expect(again.steps.map(s => s.cached)).toEqual([true, true])
    expect(again.digest).toBe(first.digest)
    await writeFile(join(ctx, 'app', 'main.c'), 'v2')
    const changed = await build(recipe)
    expect(changed.steps.map(s => s.cached)).toEqual([false, false])
  })

  it('refuses to COPY an excluded file by name, as Docker does, and leaves it out of globs', async () => {
    await files({ 'secret.env': 's', 'public.env': 'p', '.dockerignore': 'secret.env\n' })
    await symlink('secret.env', join(ctx, 'alias.env'))
    await expect(build('FROM scratch\nCOPY secret.env /x\n')).rejects.toMatchObject({ name: 'CopySourceError', message: expect.stringMatching(/secret\.env not found in the build context \(.*\.dockerignore excludes it\)/) })
    await expect(build('FROM scratch\nADD alias.env /x\n')).rejects.toMatchObject({ name: 'CopySourceError', message: expect.stringMatching(/links to secret\.env, which is not in the build context/) })
    await expect(build('FROM scratch\nCOPY s*.env /x/\n')).rejects.toMatchObject({ name: 'CopySourceError', message: expect.stringMatching(/s\*\.env matches nothing in the build context that .*\.dockerignore leaves in/) })
    await rm(join(ctx, 'alias.env'))
    expect(await layerNames(await build('FROM scratch\nCOPY *.env /x/\n'))).toEqual(['x', 'x/public.env'])
  })

  it("honours the recipe's own ignore file over the context's", async () => {
    await files({ 'a.txt': 'a', 'b.txt': 'b', '.dockerignore': 'a.txt\n', 'build/app.Dockerfile.dockerignore': 'b.txt\n' })
    const result = await build('FROM scratch\nCOPY *.txt /x/\n', join(ctx, 'build', 'app.Dockerfile'))
    expect(await layerNames(result)).toEqual(['x', 'x/a.txt'])
  })

  it('takes a destination of . (or DIR/.) as a directory, one WORKDIR named but did not make', async () => {
    await files({ 'hello.c': 'int main(){}\n' })
    expect(await layerNames(await build('FROM scratch\nWORKDIR /src\nCOPY hello.c .\n'))).toEqual(['src', 'src/hello.c'])
    expect(await layerNames(await build('FROM scratch\nCOPY hello.c /opt/app/.\n'))).toEqual(['opt', 'opt/app', 'opt/app/hello.c'])
  })
})

describe('build progress', () => {
  it('reports each layer as it is compressed into the store, the last report its size; a cached step reports nothing', async () => {
    await files({ Dockerfile: 'FROM scratch\nCOPY a.bin /a.bin\n' })
    await writeFile(join(ctx, 'a.bin'), Buffer.alloc(2 * 1024 * 1024, 1))
    const builder = createBuilder({ store: local.content, db: local.db, refs: local.refs, workDir: join(work, 'data', 'build') })
    const plan = parseRecipe('FROM scratch\nCOPY a.bin /a.bin\n', { filename: 'Dockerfile' })
    const reports: BuildProgress[] = []
    const result = await builder.build(plan, { contextDir: ctx, onProgress: p => { reports.push(p) } })
    const manifest = JSON.parse(Buffer.from(await local.content.readBytes(result.digest)).toString()) as { layers: Array<{ digest: string, size: number }> }
    const layer = manifest.layers.at(-1)
    expect(reports.length).toBeGreaterThan(0)
    expect(reports.every(r => r.what === 'layer' && r.label === 'COPY a.bin /a.bin')).toBe(true)
    expect(reports.at(-1)).toMatchObject({ done: true, bytes: layer?.size, total: layer?.size })
    expect(reports.filter(r => r.done)).toHaveLength(1)
    const again: BuildProgress[] = []
    await builder.build(plan, { contextDir: ctx, onProgress: p => { again.push(p) } })
    expect(again).toEqual([])
  })
})
