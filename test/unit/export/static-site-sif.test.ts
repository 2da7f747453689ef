/**
 * `type=static,...,sif=true` (docs/static-registry.md §"SIF"): each tag T
 * also gets the image's SIF ORAS artifact at `T.sif`, the same bytes the
 * gateway serves for `T.sif` (both from src/sif's oras-artifact.ts). Needs
 * mksquashfs (squashfs-tools), as every SIF does.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { sha256Digest } from '../../../src/content/index.ts'
import { createExporter, formatOutputSpec, parseOutputSpec } from '../../../src/export/index.ts'
import { OCI_INDEX, OCI_MANIFEST } from '../../../src/oci/index.ts'
import { SIF_CONFIG_MEDIA_TYPE, SIF_LAYER_MEDIA_TYPE, primaryPartition, readSif } from '../../../src/sif/index.ts'
import { haveTools } from '../../helpers/tools.ts'
import { makeGateway } from '../gateway/helpers.ts'
import type { TestGateway } from '../gateway/helpers.ts'
import { makeMultiArch, tempDirs } from './helpers.ts'

interface ArtifactManifest {
  artifactType: string
  config: { mediaType: string, digest: string }
  layers: Array<{ mediaType: string, digest: string, size: number, annotations?: Record<string, string> }>
  subject: { digest: string }
}

const dirs = tempDirs()
let t: TestGateway
beforeEach(async () => { t = await makeGateway() })
afterEach(async () => { await t.cleanup(); dirs.cleanup() })

describe('sif=true parsing', () => {
  it('defaults to false and round-trips', () => {
    expect(parseOutputSpec('type=static,dest=/s,name=a:1')).toMatchObject({ sif: false })
    const spec = parseOutputSpec('type=static,dest=/s,name=a:1,sif=true')
    expect(spec).toMatchObject({ type: 'static', sif: true })
    expect(parseOutputSpec(formatOutputSpec(spec))).toEqual(spec)
  })
})

describe.skipIf(!haveTools('mksquashfs'))('static site with sif=true', () => {
  it('writes T.sif as the gateway serves it, and a SIF readSif parses', async () => {
    const image = await makeMultiArch(t.store)
    const site = join(dirs.make(), 'site')
    const result = await createExporter({ tmpDir: dirs.make() }).export({ store: t.store, root: image.index }, parseOutputSpec(`type=static,dest=${site},name=hpc/app:1.0,sif=true`))
    expect(result.description).toContain('hpc/app:1.0.sif')
    const read = (p: string): Buffer => readFileSync(join(site, p))

    const bytes = read('v2/hpc/app/manifests/1.0.sif')
    const digest = sha256Digest(bytes)
    expect(sha256Digest(read(`v2/hpc/app/manifests/${digest}`))).toBe(digest)
    const m = JSON.parse(bytes.toString()) as ArtifactManifest
    expect(m.artifactType).toBe(SIF_CONFIG_MEDIA_TYPE)
    expect(sha256Digest(read(`v2/hpc/app/blobs/${m.config.digest}`))).toBe(m.config.digest)
    const host = process.arch === 'arm64' ? image.arm64 : image.amd64
    expect(m.subject.digest).toBe(host.manifest.digest)
    const layer = m.layers[0]
    expect(layer).toMatchObject({ mediaType: SIF_LAYER_MEDIA_TYPE, annotations: { 'org.opencontainers.image.title': 'image.sif' } })
    const sifPath = join(site, `v2/hpc/app/blobs/${layer?.digest}`)
    expect(sha256Digest(readFileSync(sifPath))).toBe(layer?.digest)
    const sif = await readSif(sifPath)
    expect(primaryPartition(sif)?.partition).toMatchObject({ fsType: 'squashfs', partType: 'primarySystem' })

    const state = JSON.parse(read('kiln-site.json').toString()) as { repositories: Record<string, { tags: Record<string, string> }> }
    expect(state.repositories['hpc/app']?.tags).toEqual({ '1.0': image.index.digest, '1.0.sif': digest })
    expect(JSON.parse(read('v2/hpc/app/tags/list').toString())).toEqual({ name: 'hpc/app', tags: ['1.0', '1.0.sif'] })
    expect(read('kiln-nginx.conf').toString()).toContain(`location = /v2/hpc/app/manifests/1.0.sif { types { } default_type ${OCI_MANIFEST}; add_header Docker-Content-Digest ${digest} always;`)

    // The gateway, over the same store, makes the same artifact for the same tag.
    for (const d of [image.amd64.config, image.amd64.layer, image.arm64.config, image.arm64.layer]) {
      const r = await t.inject('POST', `/v2/hpc/app/blobs/uploads/?digest=${d.digest}`, { body: await t.store.readBytes(d.digest) })
      expect(r.status).toBe(201)
    }
    for (const d of [image.amd64.manifest, image.arm64.manifest]) {
      const r = await t.inject('PUT', `/v2/hpc/app/manifests/${d.digest}`, { body: await t.store.readBytes(d.digest), headers: { 'content-type': OCI_MANIFEST } })
      expect(r.status).toBe(201)
    }
    const put = await t.inject('PUT', '/v2/hpc/app/manifests/1.0', { body: await t.store.readBytes(image.index.digest), headers: { 'content-type': OCI_INDEX } })
    expect(put.status).toBe(201)
    const served = await t.inject('GET', '/v2/hpc/app/manifests/1.0.sif', { headers: { accept: OCI_MANIFEST } })
    expect(served.status).toBe(200)
    expect(served.headers['docker-content-digest']).toBe(digest)
    expect(Buffer.compare(served.body, bytes)).toBe(0)
  }, 120_000)

  it('refuses a tag too long for its SIF tag before writing anything', async () => {
    const image = await makeMultiArch(t.store)
    const site = join(dirs.make(), 'site')
    await expect(createExporter().export({ store: t.store, root: image.index }, parseOutputSpec(`type=static,dest=${site},name=a:${'x'.repeat(126)},sif=true`)))
      .rejects.toMatchObject({ name: 'OutputSpecInvalidError' })
    expect(() => readFileSync(join(site, 'kiln-site.json'))).toThrow()
  })
})
