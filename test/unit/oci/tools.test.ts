// Round trips with the real tools of the field: the layouts and archives
// kiln writes must be accepted by skopeo and umoci, with digests unchanged.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, linkSync, lstatSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ContentStore } from '../../../src/content/index.ts'
import { COMPRESSION_BLOCK_SIZE, OCI_CONFIG, OCI_MANIFEST, encodeJson, exportImage, importImage, parseImageRef, readOciLayout, unpackImage, writeLayerFromDir } from '../../../src/oci/index.ts'
import type { Descriptor } from '../../../src/oci/index.ts'
import { haveTools } from '../../helpers/tools.ts'
import { collect, makeStore, snapshot, tempDirs } from './helpers.ts'

const REPO = resolve(import.meta.dirname, '../../..')
const MAKE_BASE = resolve(REPO, '..', 'shared', 'bench', 'make-busybox-base.sh')

describe.skipIf(!haveTools('skopeo', 'umoci', 'busybox'))('real tools round trip (skopeo, umoci)', () => {
  const dirs = tempDirs()
  let layout: string
  let store: ContentStore
  let root: Descriptor

  beforeAll(async () => {
    layout = join(dirs.make(), 'base')
    execFileSync('sh', [MAKE_BASE, layout], { stdio: 'pipe' })
    store = await makeStore(dirs)
    const roots = await importImage(store, parseImageRef(`oci:${layout}:base`))
    expect(roots).toHaveLength(1)
    root = roots[0]?.descriptor as Descriptor
  }, 60_000)
  afterAll(() => { dirs.cleanup() })

  const skopeoDigest = (ref: string): string => (JSON.parse(execFileSync('skopeo', ['inspect', ref], { encoding: 'utf8' })) as { Digest: string }).Digest

  it('imports with the digest umoci wrote', async () => {
    const index = await readOciLayout(layout)
    expect(root.digest).toBe(index.manifests[0]?.digest)
  })

  it('exports a layout that skopeo inspects and umoci unpacks rootless', async () => {
    const out = join(dirs.make(), 'out')
    await exportImage(store, root, { format: 'oci-layout', dest: out, refName: 'base' })
    expect(skopeoDigest(`oci:${out}:base`)).toBe(root.digest)
    const bundle = join(dirs.make(), 'bundle')
    execFileSync('umoci', ['unpack', '--rootless', '--image', `${out}:base`, bundle], { stdio: 'pipe' })
    expect(lstatSync(join(bundle, 'rootfs/bin/busybox')).isFile()).toBe(true)
    expect(readlinkSync(join(bundle, 'rootfs/bin/sh'))).toBe('busybox')
  })

  it('exports an oci-archive that skopeo reads', async () => {
    const file = join(dirs.make(), 'image.tar')
    await exportImage(store, root, { format: 'oci-archive', dest: file, refName: 'base' })
    expect(skopeoDigest(`oci-archive:${file}:base`)).toBe(root.digest)
  })

  it('unpacks the image itself the same way umoci does', async () => {
    const out = dirs.make()
    await unpackImage(store, root, out)
    expect(readFileSync(join(out, 'bin/busybox')).equals(readFileSync('/bin/busybox'))).toBe(true)
    expect(readlinkSync(join(out, 'bin/ls'))).toBe('busybox')
    expect(readFileSync(join(out, 'etc/passwd'), 'utf8')).toContain('root:x:0:0')
  })

  it('writes layers that umoci (Go archive/tar) unpacks to the same tree', async () => {
    const src = dirs.make()
    mkdirSync(join(src, 'usr/share/a-directory-with-a-rather-long-name/and-another-nested-directory-inside'), { recursive: true })
    const deep = 'usr/share/a-directory-with-a-rather-long-name/and-another-nested-directory-inside/file-with-a-long-name-to-need-pax-or-prefix.txt'
    writeFileSync(join(src, deep), 'deep')
    writeFileSync(join(src, 'usr/tool'), 'tool')
    chmodSync(join(src, 'usr/tool'), 0o755)
    linkSync(join(src, 'usr/tool'), join(src, 'usr/alias'))
    symlinkSync('usr/tool', join(src, 'tool'))
    writeFileSync(join(src, 'naïve-ünïcode'), 'u')
    // Over COMPRESSION_BLOCK_SIZE: the blob is several gzip members that Go's reader must take as one stream.
    writeFileSync(join(src, 'usr/big.bin'), randomBytes(3 * COMPRESSION_BLOCK_SIZE))
    const layer = await writeLayerFromDir(store, src, { compression: 'gzip' })
    const blob = await collect(store.read(layer.descriptor.digest))
    const memberHeader = Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0])
    let members = 0
    for (let at = blob.indexOf(memberHeader); at !== -1; at = blob.indexOf(memberHeader, at + 1)) members++
    expect(members).toBeGreaterThan(2)
    const config = await store.ingest(encodeJson({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.diffId] } }))
    const manifest = await store.ingest(encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, ...config }, layers: [layer.descriptor] }))
    const out = join(dirs.make(), 'out')
    await exportImage(store, { mediaType: OCI_MANIFEST, ...manifest }, { format: 'oci-layout', dest: out, refName: 'tree' })
    execFileSync('skopeo', ['copy', '-q', `oci:${out}:tree`, `oci:${join(dirs.make(), 'copy')}:tree`], { stdio: 'pipe' })
    const bundle = join(dirs.make(), 'bundle')
    execFileSync('umoci', ['unpack', '--rootless', '--image', `${out}:tree`, bundle], { stdio: 'pipe' })
    expect(snapshot(join(bundle, 'rootfs'))).toEqual(snapshot(src))
    expect(lstatSync(join(bundle, 'rootfs/usr/alias')).ino).toBe(lstatSync(join(bundle, 'rootfs/usr/tool')).ino)
  })

  it('imports a docker-archive written by skopeo', async () => {
    const file = join(dirs.make(), 'docker.tar')
    execFileSync('skopeo', ['copy', '-q', `oci:${layout}:base`, `docker-archive:${file}:kiln/busybox:base`], { stdio: 'pipe' })
    const other = await makeStore(dirs)
    const roots = await importImage(other, parseImageRef(`docker-archive:${file}`))
    expect(roots.map(r => r.refName)).toEqual(['docker.io/kiln/busybox:base'])
    const out = dirs.make()
    await unpackImage(other, roots[0]?.descriptor as Descriptor, out)
    expect(existsSync(join(out, 'bin/busybox'))).toBe(true)
    expect(readlinkSync(join(out, 'bin/sh'))).toBe('busybox')
  })
})
