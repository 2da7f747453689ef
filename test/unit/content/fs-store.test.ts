import { describe, it, expect, afterEach } from 'vitest'
import { mkdtemp, rm, readdir, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createFsContentStore, sha256Digest, digestToCid, cidToDigest } from '../../../src/content/index.ts'
import { contentStoreSuite } from './content-store-suite.ts'

contentStoreSuite('fs', async () => {
  const root = await mkdtemp(join(tmpdir(), 'kiln-fs-store-'))
  return { store: await createFsContentStore({ root }), cleanup: async () => { await rm(root, { recursive: true, force: true }) } }
})

describe('fs content store layout', () => {
  const dirs: string[] = []
  afterEach(async () => { for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true }) })

  it('is laid out like an OCI image layout, with read-only blobs', async () => {
    const root = await mkdtemp(join(tmpdir(), 'kiln-fs-layout-'))
    dirs.push(root)
    const store = await createFsContentStore({ root })
    const { digest } = await store.ingest(Buffer.from('layout'))
    const path = join(root, 'blobs', 'sha256', digest.slice(7))
    expect(await store.path(digest)).toBe(path)
    expect((await stat(path)).mode & 0o777).toBe(0o444)
    expect(JSON.parse((await import('node:fs')).readFileSync(join(root, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' })
    expect(await readdir(join(root, 'ingest'))).toEqual([])
  })

  it('removes temp files left by dead processes when opened', async () => {
    const root = await mkdtemp(join(tmpdir(), 'kiln-fs-stale-'))
    dirs.push(root)
    await createFsContentStore({ root })
    const { writeFileSync } = await import('node:fs')
    writeFileSync(join(root, 'ingest', '999999999-deadbeef'), 'half')
    writeFileSync(join(root, 'ingest', `${process.pid}-live`), 'mine')
    await createFsContentStore({ root })
    expect(await readdir(join(root, 'ingest'))).toEqual([`${process.pid}-live`])
  })
})

describe('digest <-> CID', () => {
  it('round-trips and names the same hash', () => {
    const d = sha256Digest('kiln')
    const cid = digestToCid(d)
    expect(cid.version).toBe(1)
    expect(cid.code).toBe(0x55)
    expect(cid.toString().startsWith('bafkrei')).toBe(true)
    expect(cidToDigest(cid)).toBe(d)
    expect(cidToDigest(cid.toString())).toBe(d)
  })
  it('refuses malformed digests', () => {
    expect(() => digestToCid('sha256:1234' as never)).toThrow(/invalid digest/)
  })
})
