import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { diffOverlayUpper, diffSnapshot, snapshotTree } from '../../../src/builder/snapshotter/diff.ts'
import { createUnshareSandbox } from '../../../src/builder/sandbox/unshare.ts'
import { findOpaqueDirs } from '../../../src/builder/sandbox/opaque.ts'
import { removeTree } from '../../../src/builder/sandbox/index.ts'
import type { LayerEntry } from '../../../src/builder/snapshotter/diff.ts'
import { makeBusyboxRoot } from './fixtures.ts'
import { haveTools } from '../../helpers/tools.ts'
import { existsSync } from 'node:fs'

let dir: string
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'kiln-diff-')) })
afterEach(async () => { await removeTree(dir) })

const brief = (entries: LayerEntry[]): string[] => entries.map(e => `${e.type} ${e.path}`)

describe('scan differ', () => {
  it('reports new, changed and deleted entries with their parents, and whiteouts only for the top-most deletion', async () => {
    const root = join(dir, 'root')
    mkdirSync(join(root, 'a/b/c'), { recursive: true })
    mkdirSync(join(root, 'keep'))
    mkdirSync(join(root, 'gone/deep'), { recursive: true })
    writeFileSync(join(root, 'a/b/c/f'), 'one')
    writeFileSync(join(root, 'keep/same'), 'x')
    writeFileSync(join(root, 'gone/deep/file'), 'x')
    writeFileSync(join(root, 'mode'), 'x')
    const before = await snapshotTree(root)
    writeFileSync(join(root, 'a/b/c/f'), 'two!')
    writeFileSync(join(root, 'a/new'), 'n')
    symlinkSync('/etc/passwd', join(root, 'keep/link'))
    rmSync(join(root, 'gone'), { recursive: true })
    chmodSync(join(root, 'mode'), 0o600)
    const entries = await diffSnapshot(root, before)
    expect(brief(entries)).toEqual(['directory a', 'directory a/b', 'directory a/b/c', 'file a/b/c/f', 'file a/new', 'whiteout gone', 'directory keep', 'symlink keep/link', 'file mode'])
    const link = entries.find(e => e.path === 'keep/link')
    expect(link?.type === 'symlink' && link.target).toBe('/etc/passwd')
  })

  it('finds nothing when nothing changed', async () => {
    const root = join(dir, 'root')
    mkdirSync(join(root, 'x'), { recursive: true })
    writeFileSync(join(root, 'x/f'), 'f')
    expect(await diffSnapshot(root, await snapshotTree(root))).toEqual([])
  })
})

describe.skipIf(!haveTools('unshare'))('overlay differ', () => {
  it('turns overlay whiteouts and opaque dirs into layer entries', async () => {
    const base = makeBusyboxRoot(join(dir, 'base'))
    mkdirSync(join(base, 'opt/old'), { recursive: true })
    writeFileSync(join(base, 'opt/old/file'), 'old')
    writeFileSync(join(base, 'etc/keep'), 'k')
    const upper = join(dir, 'upper'); const work = join(dir, 'work')
    mkdirSync(upper); mkdirSync(work)
    const sandbox = createUnshareSandbox()
    const r = await sandbox.run({
      argv: ['/bin/sh', '-c', 'rm -rf /opt/old && mkdir /opt/old && echo new > /opt/old/n && rm /bin/false && echo hi > /etc/x'],
      env: { PATH: '/bin' },
      root: { kind: 'overlay', lowers: [base], upper, work }
    })
    expect(r.exitCode).toBe(0)
    const entries = await diffOverlayUpper(upper, { opaqueDirs: findOpaqueDirs, inLowers: async p => existsSync(join(base, p)) })
    expect(brief(entries)).toEqual(['directory bin', 'whiteout bin/false', 'directory etc', 'file etc/x', 'directory opt', 'directory opt/old', 'opaque opt/old', 'file opt/old/n'])
  })

  it('does not mark a plain copied-up dir opaque', async () => {
    const base = join(dir, 'base2')
    mkdirSync(join(base, 'd'), { recursive: true })
    writeFileSync(join(base, 'd/a'), 'a')
    const upper = join(dir, 'u2')
    mkdirSync(join(upper, 'd'), { recursive: true })
    writeFileSync(join(upper, 'd/b'), 'b')
    expect([...await findOpaqueDirs(upper, ['d'])]).toEqual([])
  })
})
