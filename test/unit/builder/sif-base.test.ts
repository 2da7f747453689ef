/**
 * SIF base references as the builder reads them: which texts name a SIF
 * base, the library paths Apptainer's defaults fill in, and the refusals
 * that reach the user as BaseImageError with a hint (no library service
 * configured, a file that is no SIF).
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { resolveBase } from '../../../src/builder/base.ts'
import { libraryPath, sifBaseRef } from '../../../src/builder/sif-base.ts'
import { createFsContentStore } from '../../../src/content/index.ts'
import type { RefStore } from '../../../src/content/index.ts'
import { tempDirs } from '../../helpers/temp.ts'

const dirs = tempDirs('kiln-sif-base-')
afterAll(() => { dirs.cleanup() })
const platform = { os: 'linux', architecture: 'amd64' }

describe('SIF base references', () => {
  it('tells sif:, oras:// and library:// apart from other references', () => {
    expect(sifBaseRef('sif:/x/a.sif')).toEqual({ kind: 'file', path: '/x/a.sif' })
    expect(sifBaseRef('oras://ghcr.io/o/a:1')).toEqual({ kind: 'oras', text: 'ghcr.io/o/a:1' })
    expect(sifBaseRef('library:///sylabs/examples/lolcow')).toEqual({ kind: 'library', path: 'sylabs/examples/lolcow' })
    expect(sifBaseRef('docker://docker.io/library/busybox:latest')).toBeUndefined()
    expect(sifBaseRef('oci:/x/layout:base')).toBeUndefined()
  })

  it('fills in Apptainer\'s library defaults and refuses odd paths', () => {
    expect(libraryPath('alpine')).toBe('library/default/alpine:latest')
    expect(libraryPath('alpine:3.19')).toBe('library/default/alpine:3.19')
    expect(libraryPath('me/tool:1')).toBe('me/default/tool:1')
    expect(libraryPath('sylabs/examples/lolcow')).toBe('sylabs/examples/lolcow:latest')
    expect(() => libraryPath('a/../b')).toThrow(expect.objectContaining({ name: 'SifBaseUnavailableError' }))
    expect(() => libraryPath('a/b/c/d')).toThrow(expect.objectContaining({ name: 'SifBaseUnavailableError' }))
  })

  it('refuses a library base with no library service, and a file that is no SIF, as BaseImageError with a hint', async () => {
    const dir = dirs.make()
    const store = await createFsContentStore({ root: join(dir, 'store') })
    const refs = { find: () => undefined, set: () => {} } as unknown as RefStore
    const source = { file: 'Singularity.def', line: 1 }
    await expect(resolveBase({ store, refs, tmpDir: dir }, 'library://alpine', platform, source))
      .rejects.toThrow(expect.objectContaining({ name: 'BaseImageError', message: expect.stringMatching(/no library service is configured; set build\.libraryUrl/) }))
    writeFileSync(join(dir, 'not.sif'), 'hello')
    await expect(resolveBase({ store, refs, tmpDir: dir }, `sif:${join(dir, 'not.sif')}`, platform, source))
      .rejects.toThrow(expect.objectContaining({ name: 'BaseImageError', message: expect.stringMatching(/SIF header is 128 bytes.*check the path/) }))
  })
})
