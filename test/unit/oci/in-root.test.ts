/**
 * The in-root resolver's corpus: one table of trees and paths, each
 * resolved through a plain root (DirTree) and through the builder's layer
 * stack (LayerTree, the tree split over two layers), and checked against a
 * chroot: the same tree resolved by `readlink -f` inside `unshare -r
 * chroot`, where the kernel makes the root `/`, as RESOLVE_IN_ROOT has it.
 * Many trees hold links to a real host directory with a secret in it: the
 * resolved path must stay inside the tree.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { linkSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DirTree, InRootPathError, resolveInRoot, MAX_SYMLINK_HOPS } from '../../../src/oci/index.ts'
import type { InRootFailure, RootTree } from '../../../src/oci/index.ts'
import { LayerTree } from '../../../src/builder/rootfs-view.ts'
import { haveTools } from '../../helpers/tools.ts'

/** path -> 'dir' | 'file' | '->TARGET' (a symlink). Parents are made as dirs. */
type TreeSpec = Record<string, string>

interface Case {
  name: string
  tree: TreeSpec
  path: string
  follow?: boolean
  cwd?: string
  /** The resolved path, absolute, or the failure. */
  want: string | { error: InRootFailure }
  /** Whether something exists there (default true for a path result). */
  exists?: boolean
}

/** A host dir outside every root with a secret; `HOST` in a spec is replaced by its path. */
let hostDir = ''
const SECRET = 'host-secret-bytes'

function chain (n: number): TreeSpec {
  const t: TreeSpec = { end: 'dir', 'end/f': 'file' }
  for (let i = 0; i < n; i++) t[`l${i}`] = `->${i === n - 1 ? 'end' : `l${i + 1}`}`
  return t
}

const CASES: Case[] = [
  { name: 'the root', tree: {}, path: '/', want: '/' },
  { name: 'the empty path', tree: {}, path: '', want: '/' },
  { name: 'a file', tree: { a: 'file' }, path: '/a', want: '/a' },
  { name: 'nested dirs', tree: { 'a/b/c': 'dir' }, path: '/a/b/c', want: '/a/b/c' },
  { name: 'repeated and trailing slashes', tree: { 'a/b': 'dir' }, path: '///a//b///', want: '/a/b' },
  { name: 'dot components', tree: { 'a/b': 'file' }, path: '/./a/./b', want: '/a/b' },
  { name: 'a missing path is completed lexically', tree: {}, path: '/x/y', want: '/x/y', exists: false },
  { name: '.. at the root stays at the root', tree: {}, path: '..', want: '/' },
  { name: 'many .. at the root', tree: { etc: 'dir' }, path: '/../../../../etc', want: '/etc' },
  { name: '.. inside the tree', tree: { a: 'dir', b: 'file' }, path: '/a/../b', want: '/b' },
  { name: 'absolute link in the middle', tree: { etc: 'dir', 'etc/passwd': 'file', l: '->/etc' }, path: '/l/passwd', want: '/etc/passwd' },
  { name: 'absolute link to a host dir', tree: { l: '->HOST' }, path: '/l/secret', want: 'HOST/secret', exists: false },
  { name: 'relative link climbing above the root', tree: { 'etc/passwd': 'file', l: '->../../../../../../etc' }, path: '/l/passwd', want: '/etc/passwd' },
  { name: 'relative link climbing to a host dir', tree: { d: 'dir', 'd/l': '->../../../../../../../../..HOST' }, path: '/d/l/secret', want: 'HOST/secret', exists: false },
  { name: 'relative link from a subdir', tree: { d: 'dir', e: 'dir', 'e/f': 'file', 'd/l': '->../e' }, path: '/d/l/f', want: '/e/f' },
  { name: 'a chain of links', tree: { d: 'dir', a: '->b', b: '->c', c: '->/d', 'd/x': 'file' }, path: '/a/x', want: '/d/x' },
  { name: 'a chain ending at a host dir', tree: { a: '->b', b: '->c', c: '->HOST' }, path: '/a/secret', want: 'HOST/secret', exists: false },
  { name: 'last component followed', tree: { 'etc/passwd': 'file', l: '->/etc/passwd' }, path: '/l', want: '/etc/passwd' },
  { name: 'last component not followed', tree: { 'etc/passwd': 'file', l: '->/etc/passwd' }, path: '/l', follow: false, want: '/l' },
  { name: 'last host link not followed', tree: { l: '->HOST/secret' }, path: '/l', follow: false, want: '/l' },
  { name: 'last host link followed stays inside', tree: { l: '->HOST/secret' }, path: '/l', want: 'HOST/secret', exists: false },
  { name: 'middle links followed even without follow', tree: { 'etc/passwd': 'file', l: '->/etc' }, path: '/l/passwd', follow: false, want: '/etc/passwd' },
  { name: '.. after a link is physical', tree: { 'x/y': 'dir', 'x/z': 'file', d: 'dir', 'd/l': '->/x/y' }, path: '/d/l/../z', want: '/x/z' },
  { name: '.. after a relative link', tree: { 'a/b/c': 'dir', 'a/t': 'file', l: '->a/b/c' }, path: '/l/../../t', want: '/a/t' },
  { name: '.. after a link that points up', tree: { d: 'dir', 'd/l': '->..', f: 'file' }, path: '/d/l/d/l/d/l/f', want: '/f' },
  { name: 'a link to the root', tree: { etc: 'dir', l: '->/' }, path: '/l/l/l/etc', want: '/etc' },
  { name: 'a link target with slashes and dots', tree: { 'etc/passwd': 'file', l: '->.//etc/./' }, path: '/l/passwd', want: '/etc/passwd' },
  { name: 'a deep relative link', tree: { 'a/b/c': 'dir', 'a/x': 'file', 'a/b/c/l': '->../../x' }, path: '/a/b/c/l', want: '/a/x' },
  { name: 'a dangling link, last', tree: { l: '->/nowhere' }, path: '/l', want: '/nowhere', exists: false },
  { name: 'a dangling link, in the middle', tree: { l: '->/nowhere' }, path: '/l/x', want: '/nowhere/x', exists: false },
  { name: 'a link loop', tree: { a: '->b', b: '->a' }, path: '/a', want: { error: 'loop' } },
  { name: 'a link to itself', tree: { a: '->a' }, path: '/a', want: { error: 'loop' } },
  { name: 'a loop in the middle, not following the last', tree: { a: '->b', b: '->a' }, path: '/a/x', follow: false, want: { error: 'loop' } },
  { name: `${MAX_SYMLINK_HOPS} links are allowed`, tree: chain(MAX_SYMLINK_HOPS), path: '/l0/f', want: '/end/f' },
  { name: `${MAX_SYMLINK_HOPS + 1} links are too many`, tree: chain(MAX_SYMLINK_HOPS + 1), path: '/l0/f', want: { error: 'loop' } },
  { name: 'a file used as a directory', tree: { f: 'file' }, path: '/f/x', want: { error: 'not-a-directory' } },
  { name: 'a file followed by ..', tree: { f: 'file' }, path: '/f/..', want: { error: 'not-a-directory' } },
  { name: 'a link to a file used as a directory', tree: { f: 'file', l: '->f' }, path: '/l/x', want: { error: 'not-a-directory' } },
  { name: 'a NUL byte', tree: {}, path: '/a\0b', want: { error: 'nul' } },
  { name: 'relative to a cwd', tree: { 'd/f': 'file' }, path: 'f', cwd: '/d', want: '/d/f' },
  { name: '.. from a cwd', tree: { d: 'dir', 'e/f': 'file' }, path: '../e/f', cwd: '/d', want: '/e/f' },
  { name: '.. from a cwd stops at the root', tree: { d: 'dir', f: 'file' }, path: '../../../../f', cwd: '/d', want: '/f' },
  { name: 'an absolute path ignores the cwd', tree: { d: 'dir', f: 'file' }, path: '/f', cwd: '/d', want: '/f' },
  { name: 'missing then .. is lexical', tree: { a: 'file' }, path: '/nope/../a', want: '/a', exists: false },
  { name: 'names with spaces and unicode', tree: { 'dir with space/ü': 'file' }, path: '/dir with space/ü', want: '/dir with space/ü' },
  { name: 'the mountinfo trick: a link to the build dir on the host', tree: { d: '->HOST' }, path: '/d/./secret', want: 'HOST/secret', exists: false },
  { name: 'a link into the host through ..', tree: { a: 'dir', 'a/l': '->../../../../..HOST/../' + 'x' }, path: '/a/l', want: `${'HOST'}/../x`, exists: false }
]

/** Replaces HOST by the host dir, and normalizes the expected path the way the resolver returns it. */
function expand (s: string): string { return s.replaceAll('HOST', hostDir) }
function normalizeWant (s: string): string {
  const out: string[] = []
  for (const c of expand(s).split('/')) {
    if (c === '' || c === '.') continue
    if (c === '..') out.pop(); else out.push(c)
  }
  return `/${out.join('/')}`
}

function makeTree (root: string, spec: TreeSpec): void {
  mkdirSync(root, { recursive: true })
  for (const [path, kind] of Object.entries(spec)) {
    const full = join(root, path)
    mkdirSync(dirname(full), { recursive: true })
    if (kind === 'dir') mkdirSync(full, { recursive: true })
    else if (kind === 'file') writeFileSync(full, `file ${path}`)
    else symlinkSync(expand(kind.slice(2)), full)
  }
}

/** The same spec split over two layers: links in the upper one, everything else in the lower one (dirs in both). */
function makeLayers (base: string, spec: TreeSpec): string[] {
  const upper: TreeSpec = {}
  const lower: TreeSpec = {}
  for (const [path, kind] of Object.entries(spec)) {
    if (kind.startsWith('->')) upper[path] = kind; else lower[path] = kind
    if (kind === 'dir') upper[path] = 'dir'
  }
  makeTree(join(base, 'upper'), upper)
  makeTree(join(base, 'lower'), lower)
  return [join(base, 'upper'), join(base, 'lower')]
}

let work = ''
beforeAll(() => {
  work = realpathSync(mkdtempSync(join(tmpdir(), 'kiln-inroot-')))
  hostDir = join(work, 'host')
  mkdirSync(hostDir)
  writeFileSync(join(hostDir, 'secret'), SECRET)
})
afterAll(() => { rmSync(work, { recursive: true, force: true }) })

async function check (tree: RootTree, c: Case): Promise<void> {
  const run = resolveInRoot(tree, c.path, { ...(c.follow !== undefined ? { follow: c.follow } : {}), ...(c.cwd !== undefined ? { cwd: c.cwd.split('/').filter(Boolean) } : {}) })
  if (typeof c.want !== 'string') {
    const err = await run.then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(InRootPathError)
    expect((err as InRootPathError).kind).toBe(c.want.error)
    return
  }
  const r = await run
  expect(`/${r.comps.join('/')}`).toBe(normalizeWant(c.want))
  const exists = c.exists ?? true
  expect(r.entry !== undefined).toBe(exists)
  if (r.entry !== undefined) {
    // The entry's host path lies in the tree, never in the host dir.
    expect(r.entry.host.startsWith(`${work}/`)).toBe(true)
    expect(r.entry.host.startsWith(`${hostDir}/`)).toBe(false)
  }
}

describe('resolveInRoot: the corpus', () => {
  it(`has at least 40 cases (${CASES.length})`, () => { expect(CASES.length).toBeGreaterThanOrEqual(40) })

  it.each(CASES)('plain root: $name', async c => {
    const root = join(work, 'dir', c.name.replace(/[^a-z0-9]+/gi, '-'))
    makeTree(root, c.tree)
    await check(new DirTree(root), c)
  })

  it.each(CASES)('layer stack: $name', async c => {
    const layers = makeLayers(join(work, 'layers', c.name.replace(/[^a-z0-9]+/gi, '-')), c.tree)
    await check(new LayerTree(layers), c)
  })
})

/** Cases whose result exists (or that loop) can be asked of the kernel; the others have nothing to realpath. */
const KERNEL_CASES = CASES.filter(c => c.cwd === undefined && !c.path.includes('\0') && (typeof c.want !== 'string' ? c.want.error === 'loop' : (c.exists ?? true)))

describe('resolveInRoot agrees with the kernel (realpath in a chroot)', () => {
  const can = haveTools('unshare', 'chroot', 'busybox') && spawnSync('unshare', ['-r', 'true']).status === 0
  if (!can) { it.skip('needs unshare -r, chroot and a static busybox', () => {}); return }

  it.each(KERNEL_CASES)('$name', async c => {
    const root = join(work, 'kernel', c.name.replace(/[^a-z0-9]+/gi, '-'))
    makeTree(root, c.tree)
    mkdirSync(join(root, '.kiln-bb'))
    const busybox = execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim()
    try { linkSync(realpathSync(busybox), join(root, '.kiln-bb', 'busybox')) } catch { execFileSync('cp', [busybox, join(root, '.kiln-bb', 'busybox')]) }
    // readlink -f follows the last link too; without follow, resolve the parent and append the name.
    const last = c.path.split('/').filter(Boolean).pop() ?? ''
    const kernelPath = c.follow === false ? c.path.slice(0, c.path.lastIndexOf(last)) || '/' : c.path
    const r = spawnSync('unshare', ['-r', 'chroot', root, '/.kiln-bb/busybox', 'readlink', '-f', kernelPath || '/'], { encoding: 'utf8' })
    if (typeof c.want !== 'string') {
      expect(r.status).not.toBe(0)
      return
    }
    expect(r.status, r.stderr).toBe(0)
    const kernel = c.follow === false ? join(r.stdout.trim(), last) : r.stdout.trim()
    const ours = await resolveInRoot(new DirTree(root), c.path, c.follow !== undefined ? { follow: c.follow } : {})
    expect(`/${ours.comps.join('/')}`).toBe(kernel)
  })
})

describe('LayerTree merging', () => {
  const W = (...p: string[]): string => join(work, 'merge', ...p)

  it('whiteouts hide, upper entries win, and a non-directory hides the layers below it', async () => {
    const layers = [W('l1'), W('l2'), W('l3')]
    makeTree(layers[2] as string, { 'd/x': 'file', 'd/gone': 'file', 'e/under': 'file', 'f/y': 'file', 'keep': 'file' })
    makeTree(layers[1] as string, { 'd/x': 'file', e: 'file' })
    makeTree(layers[0] as string, { 'd/new': 'file', f: 'dir' })
    // A whiteout (char 0/0) needs mknod, which an unprivileged user has on Linux 5.8 and later.
    const mknod = spawnSync('mknod', [join(layers[0] as string, 'd', 'gone'), 'c', '0', '0'])
    const tree = new LayerTree(layers)
    expect((await tree.entry(['d', 'x']))?.host).toBe(join(layers[1] as string, 'd', 'x'))
    expect(await tree.entry(['e', 'under'])).toBeUndefined() // e is a file in l2: l3's dir e is hidden
    expect((await tree.entry(['f', 'y']))?.host).toBe(join(layers[2] as string, 'f', 'y')) // dirs merge
    if (mknod.status === 0) {
      expect(await tree.entry(['d', 'gone'])).toBeUndefined()
      expect(await tree.list(['d'])).toEqual(['new', 'x'])
    } else {
      expect(await tree.list(['d'])).toEqual(['gone', 'new', 'x'])
    }
    expect(await tree.list([])).toEqual(['d', 'e', 'f', 'keep'])
  })

  it('an upper dir hides a lower symlink of the same name, so nothing resolves through it', async () => {
    const layers = [W('m1'), W('m2')]
    makeTree(layers[1] as string, { l: `->${hostDir}`, 'etc/passwd': 'file' })
    makeTree(layers[0] as string, { 'l/own': 'file' })
    const tree = new LayerTree(layers)
    expect((await resolveInRoot(tree, '/l/own')).entry?.host).toBe(join(layers[0] as string, 'l', 'own'))
    expect((await resolveInRoot(tree, '/l/secret')).entry).toBeUndefined()
  })
})
