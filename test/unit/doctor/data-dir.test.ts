/**
 * The data dir is private whatever the umask: with umask 000 every module
 * that writes in it (store, ranged ingests, database with -wal/-shm, node
 * key, trust files, builder work dirs, gateway uploads) leaves nothing that
 * group or others may read or enter, but for image content under a 0700
 * ancestor; an old too-open data dir is fixed by secureDataDir and reported
 * by inspectDataDir.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createBuilder } from '../../../src/builder/index.ts'
import { inspectDataDir, secureDataDir } from '../../../src/doctor/data-dir.ts'
import { openLocalStore } from '../../../src/content/index.ts'
import { createUploadManager } from '../../../src/gateway/uploads.ts'
import { loadOrCreateIdentity } from '../../../src/p2p/identity.ts'
import { parseRecipe } from '../../../src/recipe/index.ts'
import { initRoot, issueCertificate, loadRoot, saveCertificate } from '../../../src/trust/index.ts'
import { tooOpenIn } from '../../helpers/private-tree.ts'

let work: string
beforeEach(async () => { work = await mkdtemp(join(tmpdir(), 'kiln-datadir-')) })
afterEach(async () => { await rm(work, { recursive: true, force: true }) })

const modeOf = async (path: string): Promise<number> => (await stat(path)).mode & 0o7777

describe('with umask 000', () => {
  let umask: number
  beforeAll(() => { umask = process.umask(0) })
  afterAll(() => { process.umask(umask) })

  it('everything kiln creates in the data dir is private', async () => {
    const dataDir = join(work, 'home', '.local', 'share', 'kiln')
    expect(await secureDataDir(dataDir)).toEqual({ created: true, fixed: [] })
    expect(await modeOf(dataDir)).toBe(0o700)
    expect(await modeOf(join(work, 'home'))).toBe(0o777) // not kiln's: the umask decides

    const local = await openLocalStore(dataDir)
    try {
      await local.content.ingest(Buffer.from('a blob'))
      const partial = await local.content.openPartial(`sha256:${'ab'.repeat(32)}`, 10)
      await partial.writeAt(0, Buffer.from('12345'))
      await partial.close()
      local.refs.set('app', '1', { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'cd'.repeat(32)}`, size: 1 })

      const ctx = join(work, 'ctx')
      await mkdir(join(ctx, 'dir'), { recursive: true, mode: 0o755 })
      await writeFile(join(ctx, 'dir', 'file.txt'), 'content', { mode: 0o644 })
      const builder = createBuilder({ store: local.content, db: local.db, refs: local.refs, workDir: join(dataDir, 'build') })
      await builder.build(parseRecipe('FROM scratch\nCOPY dir /dir\n', { filename: 'Dockerfile' }), { contextDir: ctx })

      await loadOrCreateIdentity(dataDir)
      const root = await initRoot(dataDir, 'uni-a')
      const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
      await saveCertificate(dataDir, await issueCertificate((await loadRoot(dataDir)).key, { subject: peer, institution: 'uni-a', roles: ['builder'] }))
      expect(root.publicPath.startsWith(dataDir)).toBe(true)

      const uploads = createUploadManager({ dir: join(dataDir, 'gateway', 'uploads'), store: local.content, ttlMs: 60_000 })
      await uploads.start('app')

      const names = await readdir(dataDir)
      expect(names).toEqual(expect.arrayContaining(['store', 'kiln.db', 'kiln.db-wal', 'kiln.db-shm', 'identity.key', 'trust', 'build', 'gateway']))
      expect(await readdir(join(dataDir, 'build', 'snapshots'))).toHaveLength(1)
      expect(await readdir(join(dataDir, 'store', 'partial'))).toHaveLength(2)
      expect(await tooOpenIn(dataDir)).toEqual([])
      // The snapshot keeps the context's modes: it is the layer's content, protected by the 0700 dirs above it.
      const [snap] = await readdir(join(dataDir, 'build', 'snapshots'))
      expect(await modeOf(join(dataDir, 'build', 'snapshots', snap as string, 'dir', 'file.txt'))).toBe(0o644)
      expect(await modeOf(join(dataDir, 'build', 'snapshots'))).toBe(0o700)
      await uploads.close()
    } finally {
      local.close()
    }
  })
})

describe('an existing data dir made by an older kiln', () => {
  it('is found too open, then fixed: the dir 0700, keys and database 0600', async () => {
    const dataDir = join(work, 'data')
    await mkdir(join(dataDir, 'trust'), { recursive: true })
    for (const f of ['kiln.db', 'kiln.db-wal', 'identity.key', 'trust/trust.yaml']) await writeFile(join(dataDir, f), 'x')
    await writeFile(join(dataDir, 'notes.txt'), 'not kiln\'s')
    await chmod(dataDir, 0o755)
    for (const f of ['kiln.db', 'kiln.db-wal', 'trust/trust.yaml', 'notes.txt']) await chmod(join(dataDir, f), 0o644)
    await chmod(join(dataDir, 'identity.key'), 0o640)

    const found = await inspectDataDir(dataDir)
    expect(found.map(f => [f.path.slice(dataDir.length), f.mode, f.want])).toEqual([
      ['', 0o755, 0o700], ['/identity.key', 0o640, 0o600], ['/kiln.db', 0o644, 0o600], ['/kiln.db-wal', 0o644, 0o600], ['/trust/trust.yaml', 0o644, 0o600]
    ])
    expect(await modeOf(dataDir)).toBe(0o755) // inspecting changes nothing

    expect(await secureDataDir(dataDir)).toEqual({ created: false, fixed: found })
    expect(await modeOf(dataDir)).toBe(0o700)
    expect(await modeOf(join(dataDir, 'kiln.db'))).toBe(0o600)
    expect(await modeOf(join(dataDir, 'identity.key'))).toBe(0o600)
    expect(await modeOf(join(dataDir, 'notes.txt'))).toBe(0o644) // not a kiln file: the 0700 dir protects it
    expect(await secureDataDir(dataDir)).toEqual({ created: false, fixed: [] })
  })

  it('fails with DataDirError where it cannot create the data dir', async () => {
    await writeFile(join(work, 'file'), '')
    await expect(secureDataDir(join(work, 'file', 'data'))).rejects.toMatchObject({ name: 'DataDirError', path: join(work, 'file', 'data') })
  })
})
