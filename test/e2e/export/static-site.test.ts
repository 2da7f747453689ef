/**
 * A static registry site written by kiln, served by Debian's nginx with the
 * generated kiln-nginx.conf, pulled with real skopeo: list-tags, copy by tag
 * and by digest, a two-platform index, and an incremental update (new tag,
 * unchanged blobs not rewritten, tags/list regenerated).
 */
import { execFile } from 'node:child_process'
import { statSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sha256Digest } from '../../../src/content/index.ts'
import type { ContentStore } from '../../../src/content/index.ts'
import { createExporter, parseOutputSpec } from '../../../src/export/index.ts'
import { readOciLayout, selectLayoutEntries } from '../../../src/oci/index.ts'
import { haveTools } from '../../helpers/tools.ts'
import { makeImage, makeMultiArch, makeStore, tempDirs } from '../../unit/export/helpers.ts'
import { startNginx } from './nginx.ts'
import type { StaticServer } from './nginx.ts'

const run = promisify(execFile)
const skopeo = async (...args: string[]): Promise<string> => (await run('skopeo', args, { timeout: 60_000 })).stdout

async function waitFor (ok: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error('nginx did not take the new configuration')
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

describe.skipIf(!haveTools('nginx', 'skopeo'))('static registry site behind nginx', () => {
  const dirs = tempDirs()
  let store: ContentStore
  let image: Awaited<ReturnType<typeof makeMultiArch>>
  let site: string
  let server: StaticServer
  const exporter = createExporter()

  beforeAll(async () => {
    store = await makeStore(dirs)
    image = await makeMultiArch(store)
    site = join(dirs.make('kiln-site-'), 'site')
    await exporter.export({ store, root: image.index }, parseOutputSpec(`type=static,dest=${site},name=hpc/app:1.0`))
    server = await startNginx(site)
  })
  afterAll(async () => {
    await server?.stop()
    dirs.cleanup()
  })

  it('answers the /v2/ ping and lists tags', async () => {
    const res = await fetch(`http://${server.hostPort}/v2/`)
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({})
    const tags = JSON.parse(await skopeo('list-tags', '--tls-verify=false', `docker://${server.hostPort}/hpc/app`)) as { Tags: string[] }
    expect(tags.Tags).toEqual(['1.0'])
  })

  it('serves manifests with their media type and digest header', async () => {
    const res = await fetch(`http://${server.hostPort}/v2/hpc/app/manifests/1.0`)
    expect(res.headers.get('content-type')).toBe('application/vnd.oci.image.index.v1+json')
    expect(res.headers.get('docker-content-digest')).toBe(image.index.digest)
    expect(sha256Digest(new Uint8Array(await res.arrayBuffer()))).toBe(image.index.digest)
    const blob = await fetch(`http://${server.hostPort}/v2/hpc/app/blobs/${image.amd64.layer.digest}`, { method: 'HEAD' })
    expect(blob.status).toBe(200)
    expect(blob.headers.get('docker-content-digest')).toBe(image.amd64.layer.digest)
  })

  it('is pulled whole by tag (both platforms) with skopeo copy --all', async () => {
    const out = join(dirs.make(), 'oci')
    await skopeo('copy', '--src-tls-verify=false', '--all', `docker://${server.hostPort}/hpc/app:1.0`, `oci:${out}:pulled`)
    const index = await readOciLayout(out)
    expect(selectLayoutEntries(index, 'pulled', out)[0]?.descriptor.digest).toBe(image.index.digest)
    for (const img of [image.amd64, image.arm64]) {
      expect(sha256Digest(await readFile(join(out, 'blobs/sha256', img.layer.digest.slice(7))))).toBe(img.layer.digest)
    }
  })

  it('is pulled by digest, one platform chosen from the index', async () => {
    const out = join(dirs.make(), 'oci')
    await skopeo('copy', '--src-tls-verify=false', '--override-os', 'linux', '--override-arch', 'arm64', `docker://${server.hostPort}/hpc/app@${image.index.digest}`, `oci:${out}:arm`)
    const [entry] = selectLayoutEntries(await readOciLayout(out), 'arm', out)
    expect(entry?.descriptor.digest).toBe(image.arm64.manifest.digest)
    const inspect = JSON.parse(await skopeo('inspect', '--tls-verify=false', `docker://${server.hostPort}/hpc/app@${image.amd64.manifest.digest}`)) as { Digest: string, Architecture: string }
    expect(inspect).toMatchObject({ Digest: image.amd64.manifest.digest, Architecture: 'amd64' })
  })

  it('adds a tag incrementally: old blobs untouched, tags/list regenerated, new tag pullable after a reload', async () => {
    const oldLayer = join(site, 'v2/hpc/app/blobs', image.amd64.layer.digest)
    const before = statSync(oldLayer)
    const extra = await makeImage(store, 'amd64', 'second image\n')
    await exporter.export({ store, root: extra.manifest }, parseOutputSpec(`type=static,dest=${site}`), { tags: ['hpc/app:2.0', 'hpc/tools:latest'] })
    // Exporting the same image again writes no blob either.
    await exporter.export({ store, root: image.index }, parseOutputSpec(`type=static,dest=${site},name=hpc/app:1.0`))
    const after = statSync(oldLayer)
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs])
    await server.reload()
    await waitFor(async () => (await fetch(`http://${server.hostPort}/v2/hpc/tools/manifests/latest`)).headers.get('content-type') === 'application/vnd.oci.image.manifest.v1+json')
    const tags = JSON.parse(await skopeo('list-tags', '--tls-verify=false', `docker://${server.hostPort}/hpc/app`)) as { Tags: string[] }
    expect(tags.Tags).toEqual(['1.0', '2.0'])
    const inspect = JSON.parse(await skopeo('inspect', '--tls-verify=false', `docker://${server.hostPort}/hpc/tools:latest`)) as { Digest: string }
    expect(inspect.Digest).toBe(extra.manifest.digest)
  })
})
