/**
 * Mirror mode with real clients: `kiln gateway --upstream docker.io=<local
 * docker-registry>` serves what the upstream holds, addressed the way
 * containerd does (`?ns=docker.io`) and the way podman's registries.conf
 * mirror does (a `docker.io/` path prefix), verified into the store; what
 * the upstream lacks stays unknown, and names outside the upstreams are not
 * forwarded.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { haveTools } from '../../helpers/tools.ts'
import { startDockerRegistry } from '../../integration/registry/docker-registry.ts'
import type { DockerRegistry } from '../../integration/registry/docker-registry.ts'
import { writeMultiArchLayout } from './fixtures.ts'
import type { LayoutImage } from './fixtures.ts'
import { startKiln } from './process.ts'
import type { KilnProcess } from './process.ts'

const run = promisify(execFile)

describe.skipIf(!haveTools('skopeo', 'docker-registry'))('gateway as a registry mirror', () => {
  let dir: string
  let env: NodeJS.ProcessEnv
  let upstream: DockerRegistry
  let upstreamStopped = false
  let gw: KilnProcess<{ url: string }>
  let image: LayoutImage
  const skopeo = async (...args: string[]): Promise<string> => (await run('skopeo', args, { env, timeout: 60_000 })).stdout

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-gw-mirror-'))
    env = { HOME: dir, XDG_RUNTIME_DIR: dir, REGISTRY_AUTH_FILE: join(dir, 'auth.json') }
    upstream = await startDockerRegistry()
    image = await writeMultiArchLayout(join(dir, 'layout'), 'latest', [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }], 'upstream')
    await skopeo('copy', '--all', '--dest-tls-verify=false', `oci:${join(dir, 'layout')}:latest`, `docker://${upstream.hostPort}/library/busybox:latest`)
    gw = await startKiln(['--data-dir', join(dir, 'data'), '--log-level', 'warn', 'gateway', '--listen', '127.0.0.1:0', '--upstream', `docker.io=http://${upstream.hostPort}`, '--json'], { env })
  }, 120_000)

  afterAll(async () => {
    await gw?.stop()
    if (!upstreamStopped) await upstream?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('answers containerd-style requests (?ns=docker.io) from the upstream, verified', async () => {
    const res = await fetch(`${gw.ready.url}/v2/library/busybox/manifests/latest?ns=docker.io`, { headers: { accept: 'application/vnd.oci.image.index.v1+json' } })
    expect(res.status).toBe(200)
    expect(res.headers.get('docker-content-digest')).toBe(image.index)
    await res.arrayBuffer()
    const child = await fetch(`${gw.ready.url}/v2/library/busybox/manifests/${image.manifests[0] as string}?ns=docker.io`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
    expect(child.status).toBe(200)
    const manifest = await child.json() as { layers: Array<{ digest: string, size: number }> }
    const layer = manifest.layers[0] as { digest: string, size: number }
    const blob = await fetch(`${gw.ready.url}/v2/library/busybox/blobs/${layer.digest}?ns=docker.io`)
    expect(blob.status).toBe(200)
    expect((await blob.arrayBuffer()).byteLength).toBe(layer.size)
    // Without ns (and without the prefix) the name is a local one: nothing is forwarded.
    expect((await fetch(`${gw.ready.url}/v2/library/busybox/manifests/latest`)).status).toBe(404)
    // A tag the upstream lacks stays unknown, with the OCI error.
    const missing = await fetch(`${gw.ready.url}/v2/library/busybox/manifests/nope?ns=docker.io`)
    expect(missing.status).toBe(404)
    expect(await missing.json()).toMatchObject({ errors: [{ code: 'MANIFEST_UNKNOWN' }] })
  }, 120_000)

  it('serves skopeo through the podman-style prefix (registries.conf mirror location gw/docker.io)', async () => {
    const host = gw.ready.url.replace(/^http:\/\//, '')
    await skopeo('copy', '--all', '--src-tls-verify=false', `docker://${host}/docker.io/library/busybox:latest`, `oci:${join(dir, 'copy')}:latest`)
    const index = JSON.parse(await readFile(join(dir, 'copy', 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
    expect(index.manifests[0]?.digest).toBe(image.index)
    for (const d of image.blobs) await readFile(join(dir, 'copy', 'blobs', 'sha256', d.slice(7)))
  }, 120_000)

  it('keeps serving cached content by digest when the upstream is gone', async () => {
    await upstream.stop()
    upstreamStopped = true
    const host = gw.ready.url.replace(/^http:\/\//, '')
    const raw = await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${host}/docker.io/library/busybox@${image.index}`)
    expect(JSON.parse(raw)).toMatchObject({ manifests: [{ digest: image.manifests[0] }, { digest: image.manifests[1] }] })
  }, 60_000)
})
