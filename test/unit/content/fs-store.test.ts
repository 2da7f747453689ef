import { describe, it, expect, afterEach } from 'vitest'
import { mkdtemp, rm, readdir, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createFsContentStore, sha256Digest, digestToCid, cidToDigest } from '../../../src/content/index.ts'
import { contentStoreSuite } from './content-store-suite.ts'
import { BLOB_FILE_MODE } from '../../../src/util/fs.ts'

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
    expect((await stat(path)).mode & 0o777).toBe(0o400)
    expect(JSON.parse((await import('node:fs')).readFileSync(join(root, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' })
    expect(await readdir(join(root, 'ingest'))).toEqual([])
  })

  it('reads into the caller\'s buffer when given one: every chunk is a view of it', async () => {
    const root = await mkdtemp(join(tmpdir(), 'kiln-fs-reuse-'))
    dirs.push(root)
    const store = await createFsContentStore({ root })
    const data = Buffer.alloc(5_000, 3)
    const { digest } = await store.ingest(data)
    const buffer = new Uint8Array(2_048)
    const sizes: number[] = []
    for await (const chunk of store.read(digest, { offset: 1, length: 4_999, buffer })) {
      expect(chunk.buffer).toBe(buffer.buffer)
      sizes.push(chunk.byteLength)
    }
    expect(sizes).toEqual([2_048, 2_048, 903])
  })

  it('moves a file into place rather than copying it (same inode), and copies one from another filesystem', async () => {
    const root = await mkdtemp(join(tmpdir(), 'kiln-fs-move-'))
    dirs.push(root)
    const store = await createFsContentStore({ root })
    const { writeFileSync } = await import('node:fs')
    const data = Buffer.alloc(9 * 1024 * 1024, 5) // above the size hashed on the worker thread
    const file = join(root, 'upload')
    writeFileSync(file, data)
    const before = await stat(file)
    const { digest } = await store.ingestFile(file, { digest: sha256Digest(data) })
    expect((await stat(await store.path(digest))).ino).toBe(before.ino)
    expect((await stat(await store.path(digest))).mode & 0o777).toBe(BLOB_FILE_MODE)

    // /dev/shm is a tmpfs on Linux: another filesystem than the temp dir, where a rename fails with EXDEV.
    const shm = await stat('/dev/shm').catch(() => undefined)
    if (shm === undefined || !shm.isDirectory() || shm.dev === before.dev) { console.warn('skipping the EXDEV case: no /dev/shm on another filesystem'); return }
    const elsewhere = await mkdtemp(join('/dev/shm', 'kiln-fs-move-'))
    dirs.push(elsewhere)
    const other = Buffer.from('from another filesystem')
    writeFileSync(join(elsewhere, 'upload'), other)
    const copied = await store.ingestFile(join(elsewhere, 'upload'), { digest: sha256Digest(other) })
    expect(Buffer.from(await store.readBytes(copied.digest)).toString()).toBe('from another filesystem')
    expect(await readdir(elsewhere)).toEqual([])
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
