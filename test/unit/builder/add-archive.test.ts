/**
 * ADD of an archive into an empty tree, streamed (src/builder/add-archive.ts,
 * `archiveLayerEntries`): the layer must be the one extracting the archive
 * and diffing the upper dir gives (src/builder/executor/copy.ts's disk
 * route), byte for byte; archives that need the disk's answer are left to it.
 */
import { createReadStream, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { archiveLayerEntries, extractArchive } from '../../../src/builder/add-archive.ts'
import { tarOwners, withArchiveOwners } from '../../../src/builder/owner-ledger.ts'
import { diffUpper } from '../../../src/builder/snapshotter/dirs.ts'
import { writeLayer } from '../../../src/oci/index.ts'
import { buildTar, makeStore, tempDirs } from '../oci/helpers.ts'
import type { TarInput } from '../oci/helpers.ts'

const dirs = tempDirs()
afterEach(() => { dirs.cleanup() })

const big = Buffer.alloc(300 * 1024, 'x') // read as a stream, not whole

const rich: TarInput[] = [
  { name: './', type: 'directory', mode: 0o755, mtime: new Date(1000_000) },
  { name: 'bin/', type: 'directory', mode: 0o755, mtime: new Date(2000_000) },
  { name: 'bin/su', body: 'su', mode: 0o4755, mtime: new Date(3000_000) },
  { name: 'bin/big', body: big, mode: 0o755 },
  { name: 'bin/sh', type: 'symlink', linkname: 'busybox', uid: 3, gid: 4 },
  { name: 'bin/again', type: 'link', linkname: 'bin/su', mode: 0o4755 },
  { name: 'bin/zz-again', type: 'link', linkname: 'bin/big', uid: 5, gid: 6, mode: 0o700 },
  { name: 'home/', type: 'directory', mode: 0o750, uid: 1000, gid: 1000 },
  { name: 'home/me', body: 'hi\n', uid: 1000, gid: 1000, mode: 0o600 },
  { name: 'tmp/', type: 'directory', mode: 0o1777 },
  { name: 'tmp/empty', body: '' },
  { name: 'dev/', type: 'directory' },
  { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 },
  { name: 'ro/', type: 'directory', mode: 0o555 },
  { name: 'ro/f', body: 'r', mode: 0o444 }
]

async function layers (tar: Buffer): Promise<{ disk: string, streamed: string | undefined }> {
  const dir = dirs.make('kiln-add-archive-')
  const store = await makeStore(dirs)
  const path = join(dir, 'a.tar')
  writeFileSync(path, tar)
  // The disk route: extract into an upper dir, diff it, apply the archive's owners.
  const upper = join(dir, 'upper')
  mkdirSync(upper)
  await extractArchive(path, upper)
  const entries = withArchiveOwners(await diffUpper(upper, undefined), '', await tarOwners(createReadStream(path)))
  const disk = (await writeLayer(store, entries, { sourceDateEpoch: 5000 })).diffId
  const got = await archiveLayerEntries(path)
  const streamed = got === undefined ? undefined : (await writeLayer(store, got, { sourceDateEpoch: 5000 })).diffId
  return { disk, streamed }
}

describe('ADD of an archive streamed into its layer', () => {
  it('gives the layer extraction gives: modes (setuid kept in the layer), owners, symlinks, hardlinks as copies, large files, devices left out', async () => {
    const { disk, streamed } = await layers(await buildTar(rich))
    expect(streamed).toBeDefined()
    expect(streamed).toBe(disk)
  })

  it('leaves to extraction what needs the disk: compression, whiteouts, a name twice, a missing parent, a symlink on the way, unclean names, hostile ones', async () => {
    const dir = dirs.make('kiln-add-archive-')
    const cases: Record<string, Buffer> = {
      gzip: gzipSync(await buildTar(rich)),
      whiteout: await buildTar([{ name: 'a/', type: 'directory' }, { name: 'a/.wh.b', body: '' }]),
      twice: await buildTar([{ name: 'f', body: '1' }, { name: 'f', body: '2' }]),
      'missing parent': await buildTar([{ name: 'a/b', body: '1' }]),
      'symlink on the way': await buildTar([{ name: 'a', type: 'symlink', linkname: '/etc' }, { name: 'a/passwd', body: 'x' }]),
      'link to a later file': await buildTar([{ name: 'a', type: 'link', linkname: 'b' }, { name: 'b', body: 'x' }]),
      'link to a dir': await buildTar([{ name: 'd/', type: 'directory' }, { name: 'a', type: 'link', linkname: 'd' }]),
      unclean: await buildTar([{ name: 'a/', type: 'directory' }, { name: 'a/../b', body: 'x' }]),
      'climbs out': await buildTar([{ name: '../evil', body: 'x' }]),
      truncated: (await buildTar([{ name: 'f', body: big }])).subarray(0, 4096)
    }
    for (const [what, tar] of Object.entries(cases)) {
      const path = join(dir, `${what}.tar`)
      writeFileSync(path, tar)
      expect(await archiveLayerEntries(path), what).toBeUndefined()
    }
  })
})
