import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { openLocalStore } from '../../../src/content/index.ts'
import { aliasedRefStore, repositorySpellings } from '../../../src/oci/index.ts'

const dir = mkdtempSync(join(tmpdir(), 'kiln-ref-aliases-'))
afterAll(() => { rmSync(dir, { recursive: true, force: true }) })
const D = `sha256:${'b'.repeat(64)}` as const
const target = { digest: D, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 10 }

describe('repositorySpellings', () => {
  it('gives every spelling Docker, containerd and podman take for the same repository, the given one first', () => {
    expect(repositorySpellings('busybox')).toEqual(['busybox', 'library/busybox', 'docker.io/library/busybox', 'index.docker.io/library/busybox'])
    expect(repositorySpellings('docker.io/library/busybox')).toEqual(['docker.io/library/busybox', 'busybox', 'library/busybox', 'index.docker.io/library/busybox'])
    expect(repositorySpellings('demo/app')).toEqual(['demo/app', 'docker.io/demo/app', 'index.docker.io/demo/app'])
    expect(repositorySpellings('localhost/kiln-bench/busybox')).toEqual(['localhost/kiln-bench/busybox'])
    expect(repositorySpellings('registry.example.org:5000/a/b')).toEqual(['registry.example.org:5000/a/b'])
    expect(repositorySpellings('Not A Name')).toEqual(['Not A Name'])
  })
})

describe('aliasedRefStore', () => {
  it('finds a name stored short under its full spelling and the other way round, preferring the exact one', async () => {
    const s = await openLocalStore(dir)
    try {
      const refs = aliasedRefStore(s.refs)
      expect(aliasedRefStore(refs)).toBe(refs)
      refs.set('busybox', 'latest', target)
      refs.set('docker.io/library/alpine', '3', target)
      expect(refs.find('docker.io/library/busybox', 'latest')).toMatchObject({ repository: 'busybox', digest: D })
      expect(refs.find('library/busybox', 'latest')?.repository).toBe('busybox')
      expect(refs.get('alpine', '3').repository).toBe('docker.io/library/alpine')
      expect(refs.find('alpine', 'latest')).toBeUndefined()
      expect(refs.find('other/busybox', 'latest')).toBeUndefined()
      refs.set('docker.io/library/busybox', 'latest', { ...target, size: 11 })
      expect(refs.find('busybox', 'latest')?.size).toBe(10)
      expect(refs.find('docker.io/library/busybox', 'latest')?.size).toBe(11)
      refs.set('busybox', 'musl', target)
      expect(refs.list('docker.io/library/busybox').map(r => `${r.repository}:${r.tag}`)).toEqual(['docker.io/library/busybox:latest', 'busybox:musl'])
      expect(refs.delete('library/alpine', '3')).toBe(true)
      expect(s.refs.find('docker.io/library/alpine', '3')).toBeUndefined()
      expect(refs.delete('library/alpine', '3')).toBe(false)
    } finally { s.close() }
  })
})
