/**
 * The builder's side of the ownership ledger (src/builder/owner-ledger.ts):
 * stage owners composed from layer summaries, faked's file format, the
 * ledger applied to a step's upper dir at the inodes the step saw (new
 * files, files of lower layers copied up or only chowned), and the glibc
 * check that decides whether libfakeroot can load in a stage. The ledger
 * running for real in the sandbox is covered by
 * test/e2e/build/root-emulation.test.ts.
 */
import { existsSync } from 'node:fs'
import { lstat, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { applyLedger, composeOwners, formatLedger, glibcRefusal, layerOwners, ledgerInput, parseLedger, rememberLayerOwners, summarizeEntries, withArchiveOwners, withCopiedOwners } from '../../../src/builder/owner-ledger.ts'
import type { ContentStore } from '../../../src/content/index.ts'
import { fakerootGlibcMinor, isStaticElf, maxGlibcMinor } from '../../../src/builder/sandbox/fakeroot.ts'
import { DirTree } from '../../../src/oci/index.ts'
import type { LayerEntry } from '../../../src/oci/index.ts'

let work: string
beforeEach(async () => { work = await mkdtemp(join(tmpdir(), 'kiln-ledger-')) })
afterEach(async () => { await rm(work, { recursive: true, force: true }) })

const file = (path: string, mode = 0o644, owner: { uid?: number, gid?: number } = {}): LayerEntry => ({ type: 'file', path, mode, content: new Uint8Array(), ...owner })
const dir = (path: string, mode = 0o755, owner: { uid?: number, gid?: number } = {}): LayerEntry => ({ type: 'directory', path, mode, ...owner })

describe('composeOwners', () => {
  it('keeps non-root owners and setuid bits, lets a later layer reset, delete or hide them', () => {
    const base = summarizeEntries([dir('/home/r', 0o755, { uid: 1000, gid: 1000 }), file('home/r/.profile', 0o644, { uid: 1000, gid: 1000 }), file('usr/bin/passwd', 0o4755), file('etc/shadow', 0o640, { gid: 42 }), file('etc/passwd'), dir('opt/a', 0o755, { uid: 5 }), file('opt/a/b', 0o644, { uid: 5 })])
    expect([...composeOwners([base])]).toEqual([
      ['home/r', { uid: 1000, gid: 1000, mode: 0o755 }],
      ['home/r/.profile', { uid: 1000, gid: 1000, mode: 0o644 }],
      ['usr/bin/passwd', { uid: 0, gid: 0, mode: 0o4755 }],
      ['etc/shadow', { uid: 0, gid: 42, mode: 0o640 }],
      ['opt/a', { uid: 5, gid: 0, mode: 0o755 }],
      ['opt/a/b', { uid: 5, gid: 0, mode: 0o644 }]
    ])
    const later = summarizeEntries([{ type: 'whiteout', path: 'home/r' }, file('etc/shadow', 0o640), { type: 'opaque', path: 'opt/a' }])
    expect([...composeOwners([base, later]).keys()]).toEqual(['usr/bin/passwd', 'opt/a'])
  })
})

describe('faked\'s file format', () => {
  it('parses what faked saves (dev in hex, mode in octal) and writes it back the same', () => {
    const text = 'dev=fd01,ino=2232782,mode=40700,uid=1000,gid=0,nlink=2,rdev=0\nnot a record\ndev=DEV,ino=7,mode=100644,uid=6,gid=12,nlink=1,rdev=0\n'
    const records = parseLedger(text)
    expect(records).toEqual([
      { dev: 'fd01', ino: 2232782, mode: 0o40700, uid: 1000, gid: 0, nlink: 2, rdev: 0 },
      { dev: 'dev', ino: 7, mode: 0o100644, uid: 6, gid: 12, nlink: 1, rdev: 0 }
    ])
    expect(formatLedger(records[0] as (typeof records)[number])).toBe('dev=fd01,ino=2232782,mode=40700,uid=1000,gid=0,nlink=2,rdev=0')
  })
})

describe('the ledger applied to a step\'s layer', () => {
  it('gives entries the owners recorded at the inodes the step saw, keeps owners of copied-up files, adds lower files only chowned, drops faked devices', async () => {
    const lower = join(work, 'lower'); const upper = join(work, 'upper')
    for (const d of ['home/r', 'data', 'etc']) await mkdir(join(lower, d), { recursive: true })
    await writeFile(join(lower, 'home/r/.profile'), 'p')
    await writeFile(join(lower, 'etc/motd'), 'm')
    for (const d of ['home/r', 'new']) await mkdir(join(upper, d), { recursive: true })
    await writeFile(join(upper, 'home/r/.profile'), 'p2') // copied up: the step saw the lower inode
    await writeFile(join(upper, 'new/f'), 'f')
    await writeFile(join(upper, 'new/dev'), '') // what libfakeroot leaves for a faked mknod
    const owners = composeOwners([summarizeEntries([dir('home/r', 0o755, { uid: 1000, gid: 1000 }), file('home/r/.profile', 0o644, { uid: 1000, gid: 1000 })])])
    const input = await ledgerInput(owners, [lower])
    expect(input.text.split('\n').filter(l => l !== '')).toHaveLength(2)
    expect(input.text).toMatch(/^dev=DEV,ino=\d+,mode=40755,uid=1000,gid=1000,/m)
    const ino = async (p: string): Promise<number> => (await lstat(p)).ino
    const out = [
      // loaded and unchanged
      ...input.text.split('\n').filter(l => l !== '').map(l => l.replace('dev=DEV', 'dev=2a')),
      `dev=2a,ino=${await ino(join(upper, 'new/f'))},mode=100600,uid=7,gid=8,nlink=1,rdev=0`,
      `dev=2a,ino=${await ino(join(upper, 'new/dev'))},mode=20644,uid=0,gid=0,nlink=1,rdev=261`,
      `dev=2a,ino=${await ino(join(lower, 'data'))},mode=40750,uid=1000,gid=1000,nlink=2,rdev=0`,
      `dev=2a,ino=${await ino(join(lower, 'etc'))},mode=40755,uid=0,gid=0,nlink=2,rdev=0`, // a chown to root of a root dir: no change
      `dev=99,ino=${await ino(join(upper, 'new'))},mode=40755,uid=9,gid=9,nlink=2,rdev=0` // another device (a RUN --mount): ignored
    ].join('\n')
    const entries: LayerEntry[] = [dir('home', 0o755), dir('home/r', 0o755), { type: 'file', path: 'home/r/.profile', mode: 0o644, source: join(upper, 'home/r/.profile') }, dir('new'), { type: 'file', path: 'new/dev', mode: 0o644, source: join(upper, 'new/dev') }, { type: 'file', path: 'new/f', mode: 0o644, source: join(upper, 'new/f') }]
    const result = await applyLedger(entries, out, '2A\n', input, upper, [lower])
    const view = result.map(e => [e.path, 'uid' in e ? e.uid ?? 0 : 0, 'gid' in e ? e.gid ?? 0 : 0, 'mode' in e ? e.mode : undefined])
    expect(view).toEqual([
      ['data', 1000, 1000, 0o750],
      ['home', 0, 0, 0o755],
      ['home/r', 1000, 1000, 0o755],
      ['home/r/.profile', 1000, 1000, 0o644],
      ['new', 0, 0, 0o755],
      ['new/f', 7, 8, 0o600]
    ])
    expect(result.find(e => e.path === 'data')).toMatchObject({ type: 'directory' })
  })
})

describe('layer summaries', () => {
  it('gives a remembered layer\'s owners without reading the store, and reads again after a failed read', async () => {
    let reads = 0
    const store = { read: async function * () { reads++; yield * []; throw new Error('no such blob') } } as unknown as ContentStore
    const owners = summarizeEntries([file('a', 0o644, { uid: 3 })])
    rememberLayerOwners('sha256:remembered', owners)
    expect(await layerOwners(store, 'sha256:remembered')).toBe(owners)
    expect(reads).toBe(0)
    await expect(layerOwners(store, 'sha256:missing')).rejects.toThrow()
    await expect(layerOwners(store, 'sha256:missing')).rejects.toThrow()
    expect(reads).toBe(2)
  })
})

describe('withCopiedOwners', () => {
  it('maps the source\'s owners to where COPY --from put it: a file by its own path, a directory\'s contents but not the directory', () => {
    const owners = composeOwners([summarizeEntries([file('src/one', 0o600, { uid: 3, gid: 4 }), dir('src/d', 0o755, { uid: 5 }), file('src/d/f', 0o644, { uid: 6 })])])
    const asFile = withCopiedOwners([file('two')], 'two', 'src/one', false, owners)
    expect(asFile).toEqual([{ ...file('two'), uid: 3, gid: 4, mode: 0o600 }])
    const asDir = withCopiedOwners([dir('copied'), file('copied/f'), file('other')], 'copied', 'src/d', true, owners)
    expect(asDir.map(e => [e.path, 'uid' in e ? e.uid : undefined])).toEqual([['copied', undefined], ['copied/f', 6], ['other', undefined]])
  })
})

describe('withArchiveOwners', () => {
  it('applies an archive\'s owners below the dir it was extracted in, and nowhere else', () => {
    const owners = summarizeEntries([dir('d', 0o755, { uid: 7, gid: 8 }), file('d/s', 0o4755, { uid: 7 })])
    const out = withArchiveOwners([dir('x'), dir('x/d'), file('x/d/s', 0o755), file('d/s')], 'x', owners)
    expect(out.map(e => [e.path, 'uid' in e ? e.uid : undefined, 'mode' in e ? e.mode : undefined])).toEqual([['x', undefined, 0o755], ['x/d', 7, 0o755], ['x/d/s', 7, 0o4755], ['d/s', undefined, 0o644]])
  })
})

describe('glibc check', () => {
  it('finds the highest GLIBC_2.N in an ELF\'s bytes', () => {
    expect(maxGlibcMinor(Buffer.from('\0GLIBC_2.2.5\0GLIBC_2.34\0GLIBC_PRIVATE\0GLIBC_2.4\0'))).toBe(34)
    expect(maxGlibcMinor(Buffer.from('musl'))).toBeUndefined()
  })

  it.skipIf(fakerootGlibcMinor() === undefined)('refuses a stage without glibc or with an older one, accepts a new enough one', async () => {
    const need = fakerootGlibcMinor() as number
    const root = join(work, 'root')
    await mkdir(join(root, 'bin'), { recursive: true })
    expect(await glibcRefusal(new DirTree(root))).toMatch(/no glibc/)
    await mkdir(join(root, 'lib/x86_64-linux-gnu'), { recursive: true })
    await writeFile(join(root, 'lib/x86_64-linux-gnu/libc.so.6'), `\0GLIBC_2.2.5\0GLIBC_2.${need - 1}\0`)
    expect(await glibcRefusal(new DirTree(root))).toMatch(new RegExp(`glibc is 2\\.${need - 1}, older than the 2\\.${need}`))
    await writeFile(join(root, 'lib/x86_64-linux-gnu/libc.so.6'), `\0GLIBC_2.2.5\0GLIBC_2.${need}\0`)
    expect(await glibcRefusal(new DirTree(root))).toBeUndefined()
  })
})

describe('isStaticElf', () => {
  it.skipIf(!existsSync('/bin/busybox') || !existsSync('/bin/ls'))('tells a static busybox from a dynamically linked program', () => {
    expect(isStaticElf('/bin/ls')).toBe(false)
    expect(isStaticElf('/bin/busybox')).toBe(true)
    expect(isStaticElf('/etc/passwd')).toBe(false)
  })
})
