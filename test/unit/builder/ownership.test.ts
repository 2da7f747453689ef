/**
 * Ownership in the layers kiln writes (src/builder/ownership.ts): --chown
 * specs resolved against the stage's /etc/passwd and /etc/group, the owner
 * written on exactly the copied entries of a real build's layer, and the
 * `flattened` annotation on images whose RUN or COPY --from lose owners.
 */
import { execFileSync } from 'node:child_process'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import { extract } from 'tar-stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createBuilder } from '../../../src/builder/index.ts'
import type { BuildEvent, BuildResult } from '../../../src/builder/index.ts'
import { resolveOwner, withOwner } from '../../../src/builder/ownership.ts'
import { openLocalStore } from '../../../src/content/index.ts'
import type { LocalStore } from '../../../src/content/index.ts'
import { DirTree } from '../../../src/oci/index.ts'
import { parseRecipe } from '../../../src/recipe/index.ts'

let work: string
let ctx: string
let local: LocalStore

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'kiln-ownership-'))
  ctx = join(work, 'ctx')
  await mkdir(join(ctx, 'etc'), { recursive: true })
  await writeFile(join(ctx, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nresearcher:x:1001:1002::/home/researcher:/bin/sh\n')
  await writeFile(join(ctx, 'etc/group'), 'root:x:0:\nlab:x:1002:\nstaff:x:50:\n')
  local = await openLocalStore(join(work, 'data'))
})
afterEach(async () => {
  local.close()
  await rm(work, { recursive: true, force: true })
})

describe('resolveOwner', () => {
  it('takes numbers as given, names from the stage, and a lone user\'s primary group (or its uid)', async () => {
    const tree = new DirTree(ctx)
    expect(await resolveOwner('1001:1002', tree)).toEqual({ uid: 1001, gid: 1002 })
    expect(await resolveOwner('researcher', tree)).toEqual({ uid: 1001, gid: 1002 })
    expect(await resolveOwner('researcher:staff', tree)).toEqual({ uid: 1001, gid: 50 })
    expect(await resolveOwner('7', tree)).toEqual({ uid: 7, gid: 7 })
    expect(await resolveOwner('7:lab', tree)).toEqual({ uid: 7, gid: 1002 })
  })

  it('refuses unknown names and malformed specs with UnknownOwnerError', async () => {
    const tree = new DirTree(ctx)
    for (const spec of ['nobody', 'researcher:nogroup', ':5', '5:']) {
      await expect(resolveOwner(spec, tree)).rejects.toMatchObject({ name: 'UnknownOwnerError' })
    }
  })
})

describe('withOwner', () => {
  it('owns the copied trees (or only their children) and leaves parents and whiteouts alone', () => {
    const entries = [
      { type: 'directory' as const, path: 'app', mode: 0o755 },
      { type: 'file' as const, path: 'app/a', mode: 0o644, content: new Uint8Array() },
      { type: 'directory' as const, path: 'x', mode: 0o755 },
      { type: 'file' as const, path: 'x/y', mode: 0o644, content: new Uint8Array() },
      { type: 'whiteout' as const, path: 'app/gone' },
      { type: 'file' as const, path: 'apple', mode: 0o644, content: new Uint8Array() }
    ]
    const out = withOwner(entries, [{ path: 'app/a' }, { path: 'x', childrenOnly: true }], { uid: 5, gid: 6 })
    expect(out.map(e => [e.path, 'uid' in e ? e.uid : undefined])).toEqual([['app', undefined], ['app/a', 5], ['x', undefined], ['x/y', 5], ['app/gone', undefined], ['apple', undefined]])
  })
})

interface TarOwner { name: string, uid: number, gid: number }

async function lastLayerOwners (result: BuildResult): Promise<{ owners: TarOwner[], annotations: Record<string, string> | undefined }> {
  const manifest = JSON.parse(Buffer.from(await local.content.readBytes(result.digest)).toString()) as { layers: Array<{ digest: `sha256:${string}` }>, annotations?: Record<string, string> }
  const layer = manifest.layers[manifest.layers.length - 1]
  if (layer === undefined) throw new Error('no layer')
  const x = extract()
  const owners: TarOwner[] = []
  const done = (async () => { for await (const e of x) { owners.push({ name: e.header.name.replace(/\/$/, ''), uid: e.header.uid ?? -1, gid: e.header.gid ?? -1 }); e.resume() } })()
  await pipeline(Readable.from(local.content.read(layer.digest)), createGunzip(), x)
  await done
  return { owners: owners.sort((a, b) => a.name.localeCompare(b.name)), annotations: manifest.annotations }
}

async function allLayerOwners (result: BuildResult): Promise<TarOwner[][]> {
  const manifest = JSON.parse(Buffer.from(await local.content.readBytes(result.digest)).toString()) as { layers: Array<{ digest: `sha256:${string}` }> }
  const out: TarOwner[][] = []
  for (const layer of manifest.layers) {
    const x = extract()
    const owners: TarOwner[] = []
    const done = (async () => { for await (const e of x) { owners.push({ name: e.header.name.replace(/\/$/, ''), uid: e.header.uid ?? -1, gid: e.header.gid ?? -1 }); e.resume() } })()
    await pipeline(Readable.from(local.content.read(layer.digest)), createGunzip(), x)
    await done
    out.push(owners.sort((a, b) => a.name.localeCompare(b.name)))
  }
  return out
}

async function lastLayerModes (result: BuildResult): Promise<Record<string, number>> {
  const manifest = JSON.parse(Buffer.from(await local.content.readBytes(result.digest)).toString()) as { layers: Array<{ digest: `sha256:${string}` }> }
  const layer = manifest.layers[manifest.layers.length - 1]
  if (layer === undefined) throw new Error('no layer')
  const x = extract()
  const modes: Record<string, number> = {}
  const done = (async () => { for await (const e of x) { modes[e.header.name.replace(/\/$/, '')] = (e.header.mode ?? 0) & 0o7777; e.resume() } })()
  await pipeline(Readable.from(local.content.read(layer.digest)), createGunzip(), x)
  await done
  return modes
}

describe('COPY --chown in a build', () => {
  const build = async (dockerfile: string, events: BuildEvent[] = []): Promise<BuildResult> => {
    const builder = createBuilder({ store: local.content, db: local.db, refs: local.refs, workDir: join(work, 'data', 'build') })
    return await builder.build(parseRecipe(dockerfile, { filename: 'Dockerfile' }), { contextDir: ctx, onEvent: e => events.push(e) })
  }

  it('writes the owner on every copied entry and the destination dir it makes, by number or by the stage\'s names, and not on other parents', async () => {
    await mkdir(join(ctx, 'tree/sub'), { recursive: true })
    await writeFile(join(ctx, 'tree/sub/f'), 'f')
    await writeFile(join(ctx, 'one'), '1')
    const events: BuildEvent[] = []
    const numeric = await build('FROM scratch\nCOPY etc /etc\nCOPY --chown=1001:1002 one tree /data/app/\n', events)
    expect((await lastLayerOwners(numeric)).owners).toEqual([
      { name: 'data', uid: 0, gid: 0 },
      { name: 'data/app', uid: 1001, gid: 1002 },
      { name: 'data/app/one', uid: 1001, gid: 1002 },
      { name: 'data/app/sub', uid: 1001, gid: 1002 },
      { name: 'data/app/sub/f', uid: 1001, gid: 1002 }
    ])
    expect((await lastLayerOwners(numeric)).annotations).toBeUndefined()
    expect(events.filter(e => e.type === 'warning')).toEqual([])

    const named = await build('FROM scratch\nCOPY etc /etc\nCOPY --chown=researcher:staff one /one\n')
    expect((await lastLayerOwners(named)).owners).toEqual([{ name: 'one', uid: 1001, gid: 50 }])

    // A directory copied into one that exists: its contents are the copy's, the existing dir is not.
    const into = await build('FROM scratch\nCOPY etc /etc\nCOPY --chown=7 tree /etc/\n')
    expect((await lastLayerOwners(into)).owners).toEqual([{ name: 'etc', uid: 0, gid: 0 }, { name: 'etc/sub', uid: 7, gid: 7 }, { name: 'etc/sub/f', uid: 7, gid: 7 }])
  })

  it('ADD of an archive: --chown owns its entries (not the destination); without it the archive\'s owners and modes are kept, cold and cached alike', async () => {
    await mkdir(join(work, 'pack/d'), { recursive: true })
    await writeFile(join(work, 'pack/d/f'), 'f')
    await writeFile(join(work, 'pack/d/s'), 's')
    await chmod(join(work, 'pack/d/s'), 0o4755)
    execFileSync('tar', ['-cf', join(ctx, 'a.tar'), '--owner=7', '--group=8', '-C', join(work, 'pack'), 'd'])
    const owned = await build('FROM scratch\nADD --chown=4:5 a.tar /x/\n')
    expect(await lastLayerOwners(owned)).toEqual({ owners: [{ name: 'x', uid: 0, gid: 0 }, { name: 'x/d', uid: 4, gid: 5 }, { name: 'x/d/f', uid: 4, gid: 5 }, { name: 'x/d/s', uid: 4, gid: 5 }], annotations: undefined })
    for (let i = 0; i < 2; i++) {
      const events: BuildEvent[] = []
      const r = await build('FROM scratch\nADD a.tar /x/\n', events)
      expect(await lastLayerOwners(r)).toEqual({ owners: [{ name: 'x', uid: 0, gid: 0 }, { name: 'x/d', uid: 7, gid: 8 }, { name: 'x/d/f', uid: 7, gid: 8 }, { name: 'x/d/s', uid: 7, gid: 8 }], annotations: undefined })
      expect(await lastLayerModes(r)).toMatchObject({ 'x/d/s': 0o4755 })
      expect(events.filter(e => e.type === 'warning')).toEqual([])
      expect(r.steps.map(s => s.cached)).toEqual([i === 1])
    }
  })

  it('COPY --from keeps the owners the other stage has (a file, a directory\'s contents), not on the destination dir it makes; --chown still wins', async () => {
    await mkdir(join(work, 'pack/d/sub'), { recursive: true })
    await writeFile(join(work, 'pack/d/sub/f'), 'f')
    await writeFile(join(work, 'pack/one'), '1')
    execFileSync('tar', ['-cf', join(ctx, 'a.tar'), '--owner=3', '--group=4', '-C', join(work, 'pack'), 'd', 'one'])
    const events: BuildEvent[] = []
    const r = await build('FROM scratch AS a\nADD a.tar /src/\nFROM scratch\nCOPY --from=a /src/one /two\nCOPY --from=a /src/d /copied\n', events)
    const layers = await allLayerOwners(r)
    expect(layers.at(-2)).toEqual([{ name: 'two', uid: 3, gid: 4 }])
    expect(layers.at(-1)).toEqual([{ name: 'copied', uid: 0, gid: 0 }, { name: 'copied/sub', uid: 3, gid: 4 }, { name: 'copied/sub/f', uid: 3, gid: 4 }])
    expect((await lastLayerOwners(r)).annotations).toBeUndefined()
    expect(events.filter(e => e.type === 'warning')).toEqual([])
    const chowned = await build('FROM scratch AS a\nADD a.tar /src/\nFROM scratch\nCOPY --from=a --chown=9:9 /src/one /two\n')
    expect((await lastLayerOwners(chowned)).owners).toEqual([{ name: 'two', uid: 9, gid: 9 }])
  })
})
