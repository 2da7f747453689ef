/**
 * Build systems pin their inputs: an oci-archive named by an http(s) URL is
 * used only with its expected sha256, and never when the bytes differ.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runKiln } from '../../helpers/cli.ts'
import { createFsContentStore, sha256Digest } from '../../../src/content/index.ts'
import { writeLayerFromDir, encodeJson, OCI_CONFIG, OCI_MANIFEST, writeOciArchive } from '../../../src/oci/index.ts'

const work = mkdtempSync(join(tmpdir(), 'kiln-url-'))
let server: Server
let base = ''
let archive: Buffer
let sha = ''

beforeAll(async () => {
  // A one-layer image holding /etc/kiln-url.txt, written as an oci-archive.
  const store = await createFsContentStore({ root: join(work, 'src-store') })
  const tree = join(work, 'tree')
  const { mkdirSync, writeFileSync } = await import('node:fs')
  mkdirSync(join(tree, 'etc'), { recursive: true })
  writeFileSync(join(tree, 'etc', 'kiln-url.txt'), 'pinned by sha256\n')
  const layer = await writeLayerFromDir(store, tree, { compression: 'gzip' })
  const config = encodeJson({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.diffId] }, config: {} })
  const cfg = await store.ingest(config)
  const manifest = encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: cfg.digest, size: cfg.size }, layers: [layer.descriptor] })
  const m = await store.ingest(manifest)
  const file = join(work, 'sysroot.tar')
  await writeOciArchive(file, store, [{ descriptor: { mediaType: OCI_MANIFEST, digest: m.digest, size: m.size }, refName: '1' }])
  archive = readFileSync(file)
  sha = createHash('sha256').update(archive).digest('hex')
  server = createServer((req, res) => {
    if (req.url === '/sysroot.tar') { res.writeHead(200, { 'content-length': archive.length }); res.end(archive) } else { res.writeHead(404); res.end() }
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const addr = server.address()
  base = `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`
})

afterAll(async () => {
  await new Promise(resolve => server.close(resolve))
  rmSync(work, { recursive: true, force: true })
})

function blobs (dataDir: string): string[] {
  const dir = join(dataDir, 'store', 'blobs', 'sha256')
  return existsSync(dir) ? readdirSync(dir) : []
}

describe('image sources named by URL', () => {
  it('imports an oci-archive from a URL when its sha256 matches', async () => {
    const d = join(work, 'ok')
    const r = await runKiln(['--data-dir', d, 'image', 'import', `${base}/sysroot.tar`, '--sha256', sha, '--json'])
    expect(r.code).toBe(0)
    const rows = JSON.parse(r.stdout) as Array<{ name: string, digest: string }>
    expect(rows.map(x => x.name)).toEqual(['sysroot:1'])
    expect(blobs(d)).toHaveLength(3)
  })

  it('refuses a URL without --sha256, and one whose bytes do not match, storing nothing', async () => {
    const d = join(work, 'bad')
    const none = await runKiln(['--data-dir', d, 'image', 'import', `${base}/sysroot.tar`])
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/--sha256/)
    const wrong = await runKiln(['--data-dir', d, 'image', 'import', `${base}/sysroot.tar`, '--sha256', sha256Digest('other').slice(7)])
    expect(wrong.code).toBe(4)
    expect(wrong.stderr).toMatch(/has sha256 [a-f0-9]{64}, expected/)
    expect(blobs(d)).toEqual([])
    const missing = await runKiln(['--data-dir', d, 'image', 'import', `${base}/absent.tar`, '--sha256', sha])
    expect(missing.code).toBe(3)
  })

  it('unpacks straight from a pinned URL', async () => {
    const d = join(work, 'unpack')
    const root = join(work, 'sysroot')
    const r = await runKiln(['--data-dir', d, 'image', 'unpack', `${base}/sysroot.tar`, root, '--sha256', sha])
    expect(r.code).toBe(0)
    expect(readFileSync(join(root, 'etc', 'kiln-url.txt'), 'utf8')).toBe('pinned by sha256\n')
  })
})
