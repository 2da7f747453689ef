/**
 * The static site on disk without a server: files and their bytes, the
 * sidecar map, the generated nginx and Apache configuration, name checks and
 * a corrupt sidecar. (test/e2e/export serves it with nginx to skopeo.)
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { sha256Digest } from '../../../src/content/index.ts'
import type { ContentStore } from '../../../src/content/index.ts'
import { createExporter, nginxConfig, parseOutputSpec } from '../../../src/export/index.ts'
import { makeMultiArch, makeStore, tempDirs } from './helpers.ts'

const dirs = tempDirs()
let store: ContentStore
let image: Awaited<ReturnType<typeof makeMultiArch>>
beforeEach(async () => {
  store = await makeStore(dirs)
  image = await makeMultiArch(store)
})
afterEach(() => { dirs.cleanup() })
const exporter = createExporter()

describe('static site exporter', () => {
  it('writes manifests by tag and digest, blobs, tags/list, the ping answer and the sidecar', async () => {
    const site = join(dirs.make(), 'site')
    await exporter.export({ store, root: image.index }, parseOutputSpec(`type=static,dest=${site},name=hpc/app:1.0`))
    const read = (p: string): Buffer => readFileSync(join(site, p))
    expect(sha256Digest(read('v2/hpc/app/manifests/1.0'))).toBe(image.index.digest)
    for (const d of [image.index, image.amd64.manifest, image.arm64.manifest]) expect(sha256Digest(read(`v2/hpc/app/manifests/${d.digest}`))).toBe(d.digest)
    for (const d of [image.amd64.config, image.amd64.layer, image.arm64.config, image.arm64.layer]) expect(sha256Digest(read(`v2/hpc/app/blobs/${d.digest}`))).toBe(d.digest)
    expect(JSON.parse(read('v2/hpc/app/tags/list').toString())).toEqual({ name: 'hpc/app', tags: ['1.0'] })
    expect(JSON.parse(read('v2/index.json').toString())).toEqual({})
    const state = JSON.parse(read('kiln-site.json').toString()) as { repositories: Record<string, { tags: Record<string, string>, manifests: Record<string, { mediaType: string }> }> }
    expect(state.repositories['hpc/app']?.tags).toEqual({ '1.0': image.index.digest })
    expect(state.repositories['hpc/app']?.manifests[image.index.digest]?.mediaType).toBe('application/vnd.oci.image.index.v1+json')
  })

  it('generates a server rule per manifest file, with its type and digest', async () => {
    const site = join(dirs.make(), 'site')
    await exporter.export({ store, root: image.amd64.manifest }, parseOutputSpec(`type=static,dest=${site},name=a/b:x`))
    const conf = readFileSync(join(site, 'kiln-nginx.conf'), 'utf8')
    expect(conf).toContain(`location = /v2/a/b/manifests/x { types { } default_type application/vnd.oci.image.manifest.v1+json; add_header Docker-Content-Digest ${image.amd64.manifest.digest} always;`)
    expect(conf).toContain(`location = /v2/a/b/manifests/${image.amd64.manifest.digest} {`)
    expect(conf).toContain('location = /v2/ {')
    const htaccess = readFileSync(join(site, 'v2/a/b/manifests/.htaccess'), 'utf8')
    expect(htaccess).toContain('<Files "x">\n  ForceType application/vnd.oci.image.manifest.v1+json')
    expect(nginxConfig({ version: 1, repositories: {} })).not.toContain('manifests')
  })

  it('refuses names that are not REPO[:TAG] before writing anything', async () => {
    const site = join(dirs.make(), 'site')
    await expect(exporter.export({ store, root: image.index }, parseOutputSpec(`type=static,dest=${site}`), { tags: ['x; include /etc/passwd'] }))
      .rejects.toMatchObject({ name: 'OutputSpecInvalidError' })
    await expect(exporter.export({ store, root: image.index }, parseOutputSpec(`type=static,dest=${site}`))).rejects.toMatchObject({ name: 'OutputSpecInvalidError', keys: ['name'] })
  })

  it('refuses to update a site whose sidecar is corrupt', async () => {
    const site = join(dirs.make(), 'site')
    await exporter.export({ store, root: image.index }, parseOutputSpec(`type=static,dest=${site},name=a:1`))
    writeFileSync(join(site, 'kiln-site.json'), '{"version": 1, "repositories": {"a": {"tags": {"1": "not-a-digest"}, "manifests": {}}}}')
    await expect(exporter.export({ store, root: image.index }, parseOutputSpec(`type=static,dest=${site},name=a:2`))).rejects.toMatchObject({ name: 'SiteStateInvalidError' })
  })
})
