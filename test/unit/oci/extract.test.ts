import { randomBytes } from 'node:crypto'
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { sha256Digest } from '../../../src/content/index.ts'
import { extractLayer } from '../../../src/oci/index.ts'
import type { ExtractWarning } from '../../../src/oci/index.ts'
import { buildTar, buildTarGz, chunksOf, rawHeader, snapshot, tempDirs } from './helpers.ts'
import type { TarInput } from './helpers.ts'

const dirs = tempDirs()
afterEach(() => { dirs.cleanup() })

/** A sandbox: base/root is the extraction target, base/outside holds a file that must never change. */
function sandbox (): { base: string, root: string, outside: string } {
  const base = dirs.make()
  const root = join(base, 'root')
  const outside = join(base, 'outside')
  mkdirSync(root)
  mkdirSync(outside)
  writeFileSync(join(outside, 'keep'), 'precious')
  return { base, root, outside }
}

/** Extracts and returns the error (or undefined); checks that nothing outside root changed. */
async function extractExpectingContainment (entries: TarInput[] | Buffer, gz = false): Promise<{ error: Error | undefined, root: string, base: string }> {
  const { base, root } = sandbox()
  const before = snapshot(base)
  const tar = Buffer.isBuffer(entries) ? entries : gz ? await buildTarGz(entries) : await buildTar(entries)
  let error: Error | undefined
  try {
    await extractLayer(chunksOf(tar), root)
  } catch (err) {
    error = err as Error
  }
  const after = snapshot(base)
  const outsideOf = (s: Record<string, string>): Record<string, string> => Object.fromEntries(Object.entries(s).filter(([k]) => k !== 'root' && !k.startsWith('root/')))
  expect(outsideOf(after)).toEqual(outsideOf(before))
  expect(lstatSync(join(base, 'outside', 'keep')).nlink).toBe(1)
  return { error, root, base }
}

describe('extractLayer: hostile inputs', () => {
  it('refuses ../ traversal', async () => {
    const name = `kiln-escape-${randomBytes(6).toString('hex')}`
    const { error } = await extractExpectingContainment([{ name: `../../${name}`, body: 'x' }])
    expect(error?.name).toBe('UnsafePathError')
    expect((error as Error & { entry: string }).entry).toBe(`../../${name}`)
    expect(existsSync(join(tmpdir(), name))).toBe(false)
  })

  it('refuses .. hidden in the middle of a path', async () => {
    const { error } = await extractExpectingContainment([{ name: 'a/b/../../../outside/keep', body: 'x' }])
    expect(error?.name).toBe('UnsafePathError')
  })

  it('keeps absolute paths inside the root', async () => {
    const name = `kiln-abs-${randomBytes(6).toString('hex')}`
    const { error, root } = await extractExpectingContainment([{ name: `/etc/${name}`, body: 'x' }])
    expect(error).toBeUndefined()
    expect(existsSync(join('/etc', name))).toBe(false)
    expect(readFileSync(join(root, 'etc', name), 'utf8')).toBe('x')
  })

  it('resolves a symlink that climbs above the root inside it (.. stops at the root)', async () => {
    const { error, root } = await extractExpectingContainment([
      { name: 'evil', type: 'symlink', linkname: '../outside' },
      { name: 'evil/keep', body: 'contained' }
    ])
    expect(error).toBeUndefined()
    // `..` at the root stays there, so ../outside is the root's own outside/.
    expect(readFileSync(join(root, 'outside', 'keep'), 'utf8')).toBe('contained')
  })

  it('resolves an absolute symlink on the path inside the root', async () => {
    const { base } = sandbox()
    const { error, root } = await extractExpectingContainment([
      { name: 'evil', type: 'symlink', linkname: join(base, 'outside') },
      { name: 'evil/keep', body: 'contained' }
    ])
    expect(error).toBeUndefined()
    expect(readFileSync(join(root, base, 'outside', 'keep'), 'utf8')).toBe('contained')
    expect(readFileSync(join(base, 'outside', 'keep'), 'utf8')).toBe('precious')
  })

  it('keeps a symlink chain that climbs out inside the root', async () => {
    const { error, root } = await extractExpectingContainment([
      { name: 'a', type: 'symlink', linkname: 'b' },
      { name: 'b', type: 'symlink', linkname: 'c' },
      { name: 'c', type: 'symlink', linkname: 'd/../..' },
      { name: 'd', type: 'directory' },
      { name: 'a/x', body: 'contained' }
    ])
    expect(error).toBeUndefined()
    expect(readFileSync(join(root, 'x'), 'utf8')).toBe('contained')
  })

  it('refuses a symlink loop', async () => {
    const { error } = await extractExpectingContainment([
      { name: 'a', type: 'symlink', linkname: 'b' },
      { name: 'b', type: 'symlink', linkname: 'a' },
      { name: 'a/x', body: 'x' }
    ])
    expect(error?.name).toBe('SymlinkEscapeError')
  })

  it('resolves a directory again after a layer replaces it with a symlink that leaves the root', async () => {
    const { base } = sandbox()
    const { error, root } = await extractExpectingContainment([
      { name: 'd', type: 'directory' },
      { name: 'd/first', body: 'one' },
      { name: 'd', type: 'symlink', linkname: join(base, 'outside') },
      { name: 'd/keep', body: 'contained' },
      { name: 'e', type: 'directory' },
      { name: 'e/first', body: 'one' },
      { name: 'e', body: 'now a file' },
      { name: 'e/second', body: 'x' }
    ])
    expect(error?.name).toBe('UnsafePathError')
    expect(readFileSync(join(root, base, 'outside', 'keep'), 'utf8')).toBe('contained')
    expect(readFileSync(join(base, 'outside', 'keep'), 'utf8')).toBe('precious')
    expect(readFileSync(join(root, 'e'), 'utf8')).toBe('now a file')
  })

  it('replaces a symlink with a file instead of writing through it', async () => {
    const { error, root } = await extractExpectingContainment([
      { name: 'link', type: 'symlink', linkname: '../outside/keep' },
      { name: 'link', body: 'replaced' }
    ])
    expect(error).toBeUndefined()
    expect(lstatSync(join(root, 'link')).isFile()).toBe(true)
    expect(readFileSync(join(root, 'link'), 'utf8')).toBe('replaced')
  })

  it('refuses a hardlink to a file outside the root', async () => {
    const { error } = await extractExpectingContainment([{ name: 'hl', type: 'link', linkname: '../outside/keep' }])
    expect(error?.name).toBe('HardlinkTargetError')
    expect((error as Error & { entry: string }).entry).toBe('hl')
  })

  it('refuses a hardlink through a symlink that leaves the root', async () => {
    const { error } = await extractExpectingContainment([
      { name: 's', type: 'symlink', linkname: '../outside' },
      { name: 'hl', type: 'link', linkname: 's/keep' }
    ])
    expect(error?.name).toBe('HardlinkTargetError')
  })

  it('refuses a hardlink to a missing file, a directory or a symlink', async () => {
    for (const entries of [
      [{ name: 'hl', type: 'link' as const, linkname: '/etc/passwd' }],
      [{ name: 'd', type: 'directory' as const }, { name: 'hl', type: 'link' as const, linkname: 'd' }],
      [{ name: 's', type: 'symlink' as const, linkname: '/etc/passwd' }, { name: 'hl', type: 'link' as const, linkname: 's' }]
    ]) {
      const { error } = await extractExpectingContainment(entries)
      expect(error?.name).toBe('HardlinkTargetError')
    }
  })

  it('refuses a truncated gzip stream', async () => {
    const gz = await buildTarGz([{ name: 'a', body: randomBytes(100_000) }])
    const { error } = await extractExpectingContainment(gz.subarray(0, gz.length - 5000))
    expect(error?.name).toBe('LayerCompressionError')
  })

  it('refuses a tar that ends inside a body', async () => {
    const tar = await buildTar([{ name: 'a', body: randomBytes(10_000) }])
    const { error } = await extractExpectingContainment(tar.subarray(0, 5000))
    expect(error?.name).toBe('TarInvalidError')
  })

  it('refuses a header with a bad checksum', async () => {
    const tar = await buildTar([{ name: 'a', body: 'x' }])
    tar[0] = 0x62
    const { error } = await extractExpectingContainment(tar)
    expect(error?.name).toBe('TarInvalidError')
  })

  it('refuses a huge PAX header before buffering it', async () => {
    const { error } = await extractExpectingContainment(Buffer.concat([rawHeader('PaxHeaders/x', 'x', 64 * 1024 * 1024), Buffer.alloc(4096)]))
    expect(error?.name).toBe('TarHeaderTooLargeError')
  })

  it('refuses a path longer than PATH_MAX', async () => {
    const { error } = await extractExpectingContainment([{ name: `${'d/'.repeat(2100)}f`, body: 'x' }], true)
    expect(error?.name).toBe('TarHeaderTooLargeError')
  })
})

describe('extractLayer: semantics', () => {
  it('extracts files, dirs, links, modes; skips devices with a warning; strips setuid', async () => {
    const { root } = sandbox()
    const tar = await buildTar([
      { name: 'bin', type: 'directory', mode: 0o755 },
      { name: 'bin/tool', body: '#!/bin/sh\n', mode: 0o4755 },
      { name: 'bin/alias', type: 'link', linkname: 'bin/tool' },
      { name: 'bin/sym', type: 'symlink', linkname: 'tool' },
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 },
      { name: 'fifo', type: 'fifo' },
      { name: 'ro', type: 'directory', mode: 0o555 },
      { name: 'ro/inside', body: 'y', mode: 0o600 }
    ])
    const warnings: ExtractWarning[] = []
    const result = await extractLayer(chunksOf(tar), root, { onWarning: w => warnings.push(w) })
    expect(result.compression).toBe('none')
    expect(result.diffId).toBe(sha256Digest(tar))
    expect(result.skipped).toBe(2)
    expect(warnings.map(w => w.entry).sort()).toEqual(['dev/null', 'fifo'])
    expect(statSync(join(root, 'bin/tool')).mode & 0o7777).toBe(0o755)
    expect(statSync(join(root, 'bin/alias')).ino).toBe(statSync(join(root, 'bin/tool')).ino)
    expect(readlinkSync(join(root, 'bin/sym'))).toBe('tool')
    expect(statSync(join(root, 'ro')).mode & 0o7777).toBe(0o555)
    expect(readFileSync(join(root, 'ro/inside'), 'utf8')).toBe('y')
    expect(existsSync(join(root, 'fifo'))).toBe(false)
  })

  it('keeps setuid when asked', async () => {
    const { root } = sandbox()
    await extractLayer(chunksOf(await buildTarGz([{ name: 'su', body: 'x', mode: 0o4755 }])), root, { keepSetuid: true })
    expect(statSync(join(root, 'su')).mode & 0o7777).toBe(0o4755)
  })

  it('applies whiteouts and opaque directories on top of an earlier layer', async () => {
    const { root } = sandbox()
    await extractLayer(chunksOf(await buildTarGz([
      { name: 'a/x', body: '1' }, { name: 'a/y', body: '2' }, { name: 'b/old', body: '3' }, { name: 'b/sub/deep', body: '4' }, { name: 'gone/z', body: '5' }
    ])), root)
    await extractLayer(chunksOf(await buildTarGz([
      { name: 'a/.wh.x', body: '' },
      { name: 'b/-first', body: 'new' },
      { name: 'b/.wh..wh..opq', body: '' },
      { name: 'b/sub/new', body: 'n' },
      { name: '.wh.gone', body: '' }
    ])), root)
    expect(snapshot(root)).toEqual({
      a: 'dir:755', 'a/y': 'file:644:2',
      b: 'dir:755', 'b/-first': 'file:644:new', 'b/sub': 'dir:755', 'b/sub/new': 'file:644:n'
    })
  })

  it('refuses a whiteout that climbs out', async () => {
    const { error } = await extractExpectingContainment([{ name: '../.wh.outside', body: '' }])
    expect(error?.name).toBe('UnsafePathError')
  })

  it('reads GNU long names and PAX paths', async () => {
    const { root } = sandbox()
    const long = `${'long-directory-name/'.repeat(8)}file-${'é'.repeat(20)}`
    await extractLayer(chunksOf(await buildTar([{ name: long, body: 'ok' }])), root)
    expect(readFileSync(join(root, long), 'utf8')).toBe('ok')
    const gnu = Buffer.concat([rawHeader('././@LongLink', 'L', 201), Buffer.from('g'.repeat(200) + '\0'), Buffer.alloc(311), rawHeader('short', '0', 0), Buffer.alloc(1024)])
    await extractLayer(chunksOf(gnu), root)
    expect(existsSync(join(root, 'g'.repeat(200)))).toBe(true)
  })

  it('accepts a tar without the end-of-archive blocks', async () => {
    const { root } = sandbox()
    const tar = await buildTar([{ name: 'a', body: 'x' }])
    await extractLayer(chunksOf(tar.subarray(0, 1024)), root)
    expect(readFileSync(join(root, 'a'), 'utf8')).toBe('x')
  })

  it('detects gzip by magic and reports the diffID of the tar', async () => {
    const { root } = sandbox()
    const tar = await buildTar([{ name: 'f', body: 'data' }])
    const r = await extractLayer(chunksOf(gzipSync(tar), 3), root)
    expect(r.compression).toBe('gzip')
    expect(r.diffId).toBe(sha256Digest(tar))
  })
})
