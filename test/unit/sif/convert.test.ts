/**
 * Images to SIF and back with the real squashfs-tools: the SIF unsquashes
 * to the image's files plus Apptainer's metadata, the same image and epoch
 * give the same bytes (UUID from the digest, times from the epoch), and a
 * SIF read back as a base holds the same files.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, readlinkSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { OCI_CONFIG, OCI_MANIFEST, encodeJson, unpackImage, writeLayer } from '../../../src/oci/index.ts'
import type { Descriptor } from '../../../src/oci/index.ts'
import type { ContentStore } from '../../../src/content/index.ts'
import { exportSif, importSif, readObject, readSif, sifIdFor } from '../../../src/sif/index.ts'
import { haveTools } from '../../helpers/tools.ts'
import { makeStore, tempDirs } from '../export/helpers.ts'

const dirs = tempDirs()
afterEach(() => { dirs.cleanup() })

async function image (store: ContentStore, greeting: string): Promise<Descriptor> {
  const layer = await writeLayer(store, [
    { type: 'directory', path: 'bin', mode: 0o755 },
    { type: 'file', path: 'bin/hello', mode: 0o755, content: new TextEncoder().encode(`#!/bin/sh\necho ${greeting}\n`) },
    { type: 'directory', path: 'proc', mode: 0o555 },
    { type: 'symlink', path: 'usr', target: '/' }
  ], { sourceDateEpoch: 0 })
  const config = encodeJson({
    architecture: 'amd64', os: 'linux',
    config: { Env: ['PATH=/bin', "GREETING=it's"], Entrypoint: ['/bin/hello'], Cmd: ['world'], Labels: { 'org.example.team': 'hpc' } },
    rootfs: { type: 'layers', diff_ids: [layer.diffId] }
  })
  const c = await store.ingest(config)
  const m = encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: c.digest, size: c.size }, layers: [layer.descriptor] })
  const info = await store.ingest(m)
  return { mediaType: OCI_MANIFEST, digest: info.digest, size: info.size }
}

function unsquash (sif: string, offset: number, dest: string): void {
  execFileSync('unsquashfs', ['-no-xattrs', '-quiet', '-no-progress', '-offset', String(offset), '-dest', dest, sif])
}

describe.skipIf(!haveTools('mksquashfs', 'unsquashfs'))('SIF from and to images', () => {
  it('writes a SIF whose root partition unsquashes to the image and Apptainer metadata', async () => {
    const store = await makeStore(dirs)
    const root = await image(store, 'world')
    const dir = dirs.make()
    const out = join(dir, 'app.sif')
    const written = await exportSif(store, root, out, { definition: 'Bootstrap: docker\nFrom: busybox\n', sourceDateEpoch: 1700000000, tmpDir: dir })
    const sif = await readSif(out)
    expect(sif.header).toMatchObject({ arch: 'amd64', id: sifIdFor(root.digest), createdAt: 1700000000, launchScript: '#!/usr/bin/env run-singularity\n' })
    expect(sif.objects.map(o => o.dataType)).toEqual(['deffile', 'partition'])
    expect(Buffer.from(await readObject(sif, sif.objects[0]!)).toString()).toBe('Bootstrap: docker\nFrom: busybox\n')
    const part = sif.objects[1]!
    expect(part.partition).toEqual({ fsType: 'squashfs', partType: 'primarySystem', arch: 'amd64' })
    expect(part.offset % 4096).toBe(0)
    expect(written.objects).toEqual(sif.objects)

    const rootfs = join(dir, 'unsquashed')
    unsquash(out, part.offset, rootfs)
    expect(readFileSync(join(rootfs, 'bin/hello'), 'utf8')).toBe('#!/bin/sh\necho world\n')
    expect(readlinkSync(join(rootfs, 'usr'))).toBe('/')
    const meta = join(rootfs, '.singularity.d')
    expect(readFileSync(join(meta, 'env/10-docker2singularity.sh'), 'utf8')).toBe("#!/bin/sh\nexport PATH='/bin'\nexport GREETING='it'\\''s'\n")
    expect(readFileSync(join(meta, 'env/90-environment.sh'), 'utf8')).toMatch(/^#!\/bin\/sh\n/)
    expect(JSON.parse(readFileSync(join(meta, 'labels.json'), 'utf8'))).toEqual({ 'org.example.team': 'hpc' })
    expect(readFileSync(join(meta, 'Singularity'), 'utf8')).toBe('Bootstrap: docker\nFrom: busybox\n')
    expect(readlinkSync(join(rootfs, 'singularity'))).toBe('.singularity.d/runscript')
    // The runscript runs Entrypoint + Cmd; arguments replace Cmd.
    const runscript = join(meta, 'runscript')
    expect(statSync(runscript).mode & 0o111).not.toBe(0)
    expect(readFileSync(runscript, 'utf8')).toContain("exec '/bin/hello' 'world'")
    expect(readFileSync(runscript, 'utf8')).toContain("exec '/bin/hello' \"$@\"")
    const sq = execFileSync('unsquashfs', ['-stat', '-offset', String(part.offset), out], { encoding: 'utf8' })
    expect(sq).toMatch(/Creation or last append time .*2023/)
  })

  it('gives the same bytes for the same image and epoch, other bytes for another epoch', async () => {
    const store = await makeStore(dirs)
    const root = await image(store, 'world')
    const dir = dirs.make()
    await exportSif(store, root, join(dir, 'a.sif'), { sourceDateEpoch: 1000 })
    await exportSif(store, root, join(dir, 'b.sif'), { sourceDateEpoch: 1000 })
    await exportSif(store, root, join(dir, 'c.sif'), { sourceDateEpoch: 2000 })
    const a = readFileSync(join(dir, 'a.sif'))
    expect(a.equals(readFileSync(join(dir, 'b.sif')))).toBe(true)
    expect(a.equals(readFileSync(join(dir, 'c.sif')))).toBe(false)
    const other = await image(store, 'moon')
    await exportSif(store, other, join(dir, 'd.sif'), { sourceDateEpoch: 1000 })
    expect((await readSif(join(dir, 'd.sif'))).header.id).not.toBe((await readSif(join(dir, 'a.sif'))).header.id)
  })

  it('reads a SIF back as a single-layer image with the same files, and the golden one-group.sif too', async () => {
    const store = await makeStore(dirs)
    const root = await image(store, 'world')
    const dir = dirs.make()
    await exportSif(store, root, join(dir, 'a.sif'), { sourceDateEpoch: 0 })
    const imported = await importSif(store, join(dir, 'a.sif'), { tmpDir: dir, sourceDateEpoch: 0 })
    const again = await importSif(store, join(dir, 'a.sif'), { tmpDir: dir, sourceDateEpoch: 0 })
    expect(again.descriptor.digest).toBe(imported.descriptor.digest)
    const unpacked = join(dir, 'unpacked')
    mkdirSync(unpacked)
    const { config, manifest } = await unpackImage(store, imported.descriptor, unpacked)
    expect(manifest.layers).toHaveLength(1)
    expect(config.architecture).toBe('amd64')
    expect(config.config?.Labels).toEqual({ 'org.example.team': 'hpc' })
    expect(readFileSync(join(unpacked, 'bin/hello'), 'utf8')).toBe('#!/bin/sh\necho world\n')
    expect(readFileSync(join(unpacked, '.singularity.d/runscript'), 'utf8')).toContain('/bin/hello')

    const golden = await importSif(store, join(import.meta.dirname, '../../fixtures/sif/one-group.sif'), { tmpDir: dir })
    const g = join(dir, 'golden')
    mkdirSync(g)
    const gi = await unpackImage(store, golden.descriptor, g, { platform: { os: 'linux', architecture: '386' } })
    expect(gi.config.architecture).toBe('386')
    expect(readFileSync(join(g, 'hello.txt'), 'utf8').length).toBeGreaterThan(0)
  })
})
