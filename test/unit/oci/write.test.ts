import { execFileSync } from 'node:child_process'
import { chmodSync, chownSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { sha256Digest } from '../../../src/content/index.ts'
import { OCI_LAYER_TAR_GZIP, OCI_LAYER_TAR_ZSTD, extractLayer, readTar, writeLayer, writeLayerFromDir } from '../../../src/oci/index.ts'
import type { WrittenLayer } from '../../../src/oci/index.ts'
import { blobCount, collect, makeStore, snapshot, tempDirs } from './helpers.ts'

const dirs = tempDirs()
afterEach(() => { dirs.cleanup() })

const NODE = resolve('node_modules/.bin/node')
const LONG = `${'nested-directory/'.repeat(7)}a-file-name-that-needs-pax-${'x'.repeat(40)}`

/** The same tree every time, with mtimes chosen by the caller. */
function makeTree (dir: string, mtime: number): void {
  mkdirSync(join(dir, 'bin'), { recursive: true })
  mkdirSync(join(dir, 'etc/conf.d'), { recursive: true })
  mkdirSync(join(dir, LONG, '..'), { recursive: true })
  writeFileSync(join(dir, 'bin/tool'), 'a tool\n'.repeat(1000))
  chmodSync(join(dir, 'bin/tool'), 0o755)
  linkSync(join(dir, 'bin/tool'), join(dir, 'bin/tool-alias'))
  symlinkSync('tool', join(dir, 'bin/sym'))
  writeFileSync(join(dir, 'etc/conf.d/x.conf'), 'k=v\n')
  chmodSync(join(dir, 'etc/conf.d/x.conf'), 0o600)
  writeFileSync(join(dir, 'café-ünïcode'), 'utf8 name')
  writeFileSync(join(dir, LONG), 'long')
  writeFileSync(join(dir, 'empty'), '')
  const touch = (rel: string): void => {
    const full = join(dir, rel)
    if (!lstatSync(full).isSymbolicLink()) utimesSync(full, mtime, mtime)
    if (lstatSync(full).isDirectory()) for (const n of readdirSync(full)) touch(rel === '' ? n : `${rel}/${n}`)
  }
  touch('')
}

function chownTree (dir: string, uid: number): void {
  chownSync(dir, uid, uid)
  for (const n of readdirSync(dir, { recursive: true }) as string[]) {
    try { chownSync(join(dir, n), uid, uid) } catch { /* symlink to nowhere */ }
  }
}

describe('deterministic layer writing', () => {
  it('writes byte-identical blobs for the same tree at different times by different users', async () => {
    const epoch = 1_700_000_000
    const a = dirs.make()
    makeTree(a, epoch + 1000)
    const store = await makeStore(dirs)
    const first = await writeLayerFromDir(store, a, { compression: 'gzip', sourceDateEpoch: epoch })

    const b = dirs.make()
    makeTree(b, epoch + 999_999)
    const otherStore = join(dirs.make(), 'store')
    const isRoot = process.getuid?.() === 0
    if (isRoot) {
      chownTree(b, 65534)
      chmodSync(join(otherStore, '..'), 0o777)
    }
    const out = execFileSync(NODE, [resolve('test/fixtures/oci/write-layer.ts'), otherStore, b, 'gzip', String(epoch)], {
      ...(isRoot ? { uid: 65534, gid: 65534 } : {}),
      encoding: 'utf8'
    })
    const second = JSON.parse(out) as WrittenLayer & { uid: number }
    if (isRoot) expect(second.uid).toBe(65534)
    expect(second.descriptor).toEqual(first.descriptor)
    expect(second.diffId).toBe(first.diffId)
    expect(first.descriptor.mediaType).toBe(OCI_LAYER_TAR_GZIP)
  })

  it('writes sorted, owner-free, clamped headers, and round-trips through extraction', async () => {
    const src = dirs.make()
    makeTree(src, 2_000_000_000)
    const store = await makeStore(dirs)
    const layer = await writeLayerFromDir(store, src, { compression: 'zstd', sourceDateEpoch: 1_000 })
    expect(layer.descriptor.mediaType).toBe(OCI_LAYER_TAR_ZSTD)
    expect(await store.info(layer.descriptor.digest)).toEqual({ digest: layer.descriptor.digest, size: layer.descriptor.size })

    // The uncompressed tar: read with kiln's reader after decompressing with its extractor's detection.
    const out = dirs.make()
    const r = await extractLayer(store.read(layer.descriptor.digest), out)
    expect(r.diffId).toBe(layer.diffId)
    expect(r.compression).toBe('zstd')
    expect(snapshot(out)).toEqual(snapshot(src))
    expect(lstatSync(join(out, 'bin/tool-alias')).ino).toBe(lstatSync(join(out, 'bin/tool')).ino)

    const tar = await writeLayer(store, [], { compression: 'none' })
    expect(tar.descriptor.digest).toBe(tar.diffId)
    expect(tar.tarSize).toBe(1024)
  })

  it('writes explicit entries: whiteouts, opaque markers, clamped mtimes, zero owners', async () => {
    const store = await makeStore(dirs)
    const layer = await writeLayer(store, [
      { type: 'file', path: '/z', mode: 0o644, content: new TextEncoder().encode('z'), mtime: 5 },
      { type: 'whiteout', path: 'etc/old' },
      { type: 'opaque', path: 'var/cache' },
      { type: 'directory', path: 'etc', mode: 0o755, mtime: 99_999 },
      { type: 'symlink', path: 'a', target: '/z' },
      { type: 'hardlink', path: 'b', target: '/z', mode: 0o644 }
    ], { compression: 'none', sourceDateEpoch: 100 })
    const headers = []
    for await (const e of readTar(store.read(layer.descriptor.digest))) headers.push(e.header)
    expect(headers.map(h => h.name)).toEqual(['a', 'b', 'etc/', 'etc/.wh.old', 'var/cache/.wh..wh..opq', 'z'])
    expect(headers.map(h => h.mtime)).toEqual([100, 5, 100, 100, 100, 5])
    expect(headers.every(h => h.uid === 0 && h.gid === 0 && h.uname === '' && h.gname === '')).toBe(true)
    // b links to z but sorts first: b takes the data, z becomes the link.
    expect(headers.map(h => h.type)).toEqual(['symlink', 'file', 'directory', 'file', 'file', 'hardlink'])
    expect(headers[5]?.linkname).toBe('b')
    const out = dirs.make()
    await extractLayer(store.read(layer.descriptor.digest), out)
    expect(readFileSync(join(out, 'b'), 'utf8')).toBe('z')
    expect(lstatSync(join(out, 'b')).ino).toBe(lstatSync(join(out, 'z')).ino)
    expect(layer.descriptor.digest).toBe(sha256Digest(await collect(store.read(layer.descriptor.digest))))
  })

  it('reports a source that is not a regular file as such (not as a compression error), storing nothing', async () => {
    const store = await makeStore(dirs)
    const notAFile = dirs.make()
    const link = join(dirs.make(), 'link')
    writeFileSync(`${link}-target`, 'x')
    symlinkSync(`${link}-target`, link)
    for (const compression of ['gzip', 'zstd', 'none'] as const) {
      for (const source of [notAFile, link]) {
        await expect(writeLayer(store, [{ type: 'file', path: 'f', mode: 0o644, source }], { compression })).rejects.toMatchObject({ name: 'SourceChangedError' })
      }
    }
    expect(await blobCount(store)).toBe(0)
  })

  it('reports the compressed bytes stored as it goes, the last report the layer\'s size', async () => {
    const store = await makeStore(dirs)
    const reports: number[] = []
    const big = Buffer.alloc(3 * 1024 * 1024, 7)
    const layer = await writeLayer(store, [{ type: 'file', path: 'big', mode: 0o644, content: big }], { onProgress: n => { reports.push(n) } })
    expect(reports.length).toBeGreaterThan(0)
    expect([...reports].sort((x, y) => x - y)).toEqual(reports)
    expect(reports.at(-1)).toBe(layer.descriptor.size)
  })

  it('refuses the same path twice', async () => {
    const store = await makeStore(dirs)
    await expect(writeLayer(store, [{ type: 'whiteout', path: 'a' }, { type: 'whiteout', path: '/a' }])).rejects.toMatchObject({ name: 'UnsafePathError' })
  })
})
