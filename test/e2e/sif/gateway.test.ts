/**
 * The gateway serves SIF (docs/gateway.md §"SIF"), end to end: `kiln
 * gateway` runs as the unprivileged user on loopback over a store holding an
 * image built from an Apptainer definition on the busybox base, with the
 * real squashfs-tools:
 * - GET of the manifest `<tag>.sif` answers an ORAS SIF artifact whose
 *   subject is the image; its layer parses as a SIF whose primary partition
 *   unsquashes to the image's files; the referrers API lists it;
 * - it is made once: a second GET (and a HEAD) is served from the cache, the
 *   same digest, with no second export; concurrent first GETs share one;
 * - `Bootstrap: oras` builds on it through the gateway, and on a SIF pushed
 *   to the gateway with kiln's registry client as `oras push` does.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sha256Digest } from '../../../src/content/index.ts'
import { OCI_MANIFEST, encodeJson } from '../../../src/oci/index.ts'
import { createRegistryClient } from '../../../src/registry/index.ts'
import { SIF_CONFIG_MEDIA_TYPE, SIF_LAYER_MEDIA_TYPE, primaryPartition, readSif } from '../../../src/sif/index.ts'
import { makeBusyboxBase } from '../../helpers/busybox-base.ts'
import { kilnProcs } from '../../helpers/kiln-procs.ts'
import type { KilnProcs, Proc } from '../../helpers/kiln-procs.ts'
import { haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'

const DEFINITION = `Bootstrap: oci
From: LAYOUT:base

%post
    mkdir -p /opt/tool
    echo "tool built" > /opt/tool/version

%runscript
    cat /opt/tool/version
`

/** A definition on a SIF base that checks the base's file is there. */
const onSif = (from: string): string => `Bootstrap: oras
From: ${from}

%post
    test "$(cat /opt/tool/version)" = "tool built"
`

interface ArtifactManifest {
  artifactType: string
  config: { mediaType: string }
  layers: Array<{ mediaType: string, digest: string, size: number, annotations?: Record<string, string> }>
  subject: { digest: string, mediaType: string, size: number }
}

const ACCEPT = { accept: `${OCI_MANIFEST}, application/vnd.oci.image.index.v1+json` }
const made = (gw: Proc): number => (gw.stderr() + gw.stdout()).split('SIF artifact made').length - 1

describe.skipIf(!haveTools('setpriv', 'busybox', 'umoci', 'mksquashfs', 'unsquashfs'))('the gateway serves SIF', () => {
  let u: Unprivileged
  let k: KilnProcs
  let gw: Proc
  let url: string
  let hostPort: string
  let buildData: string
  let n = 0

  // Asynchronous (not u.kiln's spawnSync): a blocked event loop would miss the gateway closing idle keep-alive sockets, and reuse them.
  const build = async (definition: string, args: string[], dataDir = u.dataDir): Promise<{ status: number, err: string }> => {
    const ctx = join(u.work, `ctx-${++n}`)
    mkdirSync(ctx)
    writeFileSync(join(ctx, 'Singularity.def'), definition)
    u.give(ctx)
    const r = await k.exec(['build', '--json', '-f', join(ctx, 'Singularity.def'), ...args, ctx], dataDir, 240_000)
    return { status: r.code, err: r.stderr }
  }

  beforeAll(async () => {
    u = makeUnprivileged()
    k = kilnProcs(u)
    const layout = makeBusyboxBase(u)
    const r = await build(DEFINITION.replaceAll('LAYOUT', layout), ['-t', 'hpc/tool:1', '-t', 'hpc/tool:2'])
    expect(r.err).toBe('')
    expect(r.status).toBe(0)
    // Builds on the gateway's SIFs use their own data dir: they reach the gateway only over HTTP.
    buildData = join(u.home, 'build-data')
    mkdirSync(buildData, { mode: 0o700 })
    u.give(buildData)
    gw = k.start(['gateway', '--listen', '127.0.0.1:0', '--anonymous-push', '--json', '--log-level', 'info'], u.dataDir)
    url = (await gw.waitFor(/"url":\s*"(http:\/\/127\.0\.0\.1:\d+)"/))[1] as string
    hostPort = new URL(url).host
  }, 300_000)
  afterAll(async () => {
    await k?.stopAll()
    u?.cleanup()
  }, 60_000)

  const getManifest = async (reference: string, method = 'GET'): Promise<{ status: number, digest: string | null, body: string }> => {
    const res = await fetch(`${url}/v2/hpc/tool/manifests/${reference}`, { method, headers: ACCEPT })
    return { status: res.status, digest: res.headers.get('docker-content-digest'), body: await res.text() }
  }

  it('answers <tag>.sif with a SIF artifact of the image, listed as its referrer, made once', async () => {
    const image = await getManifest('1')
    expect(image.status).toBe(200)

    const started = performance.now()
    const first = await getManifest('1.sif')
    const firstMs = performance.now() - started
    expect(first.status, first.body).toBe(200)
    const m = JSON.parse(first.body) as ArtifactManifest
    expect(m.artifactType).toBe(SIF_CONFIG_MEDIA_TYPE)
    expect(m.config.mediaType).toBe(SIF_CONFIG_MEDIA_TYPE)
    expect(m.layers).toHaveLength(1)
    expect(m.layers[0]).toMatchObject({ mediaType: SIF_LAYER_MEDIA_TYPE, annotations: { 'org.opencontainers.image.title': 'image.sif' } })
    expect(m.subject.digest).toBe(image.digest)
    expect(first.digest).toBe(sha256Digest(new TextEncoder().encode(first.body)))

    // The SIF: fetched by digest, verified, parsed, its partition unsquashed.
    const layer = await fetch(`${url}/v2/hpc/tool/blobs/${m.layers[0]!.digest}`)
    expect(layer.status).toBe(200)
    const bytes = Buffer.from(await layer.arrayBuffer())
    expect(sha256Digest(bytes)).toBe(m.layers[0]!.digest)
    expect(bytes.byteLength).toBe(m.layers[0]!.size)
    const file = join(u.work, 'pulled.sif')
    writeFileSync(file, bytes)
    u.give(file)
    const sif = await readSif(file)
    const part = primaryPartition(sif)
    expect(part.partition).toMatchObject({ fsType: 'squashfs', partType: 'primarySystem' })
    const root = join(u.work, 'pulled')
    const un = u.exec('unsquashfs', ['-no-xattrs', '-quiet', '-no-progress', '-offset', String(part.offset), '-dest', root, file])
    expect(un.stderr).toBe('')
    expect(un.status).toBe(0)
    expect(readFileSync(join(root, 'opt/tool/version'), 'utf8')).toBe('tool built\n')
    expect(readFileSync(join(root, 'bin/busybox')).byteLength).toBeGreaterThan(100_000)
    expect(readFileSync(join(root, '.singularity.d/runscript'), 'utf8')).toContain('cat /opt/tool/version')

    const referrers = await fetch(`${url}/v2/hpc/tool/referrers/${image.digest}`)
    expect(referrers.status).toBe(200)
    const index = await referrers.json() as { manifests: Array<{ digest: string, artifactType?: string }> }
    expect(index.manifests).toContainEqual(expect.objectContaining({ digest: first.digest, artifactType: SIF_CONFIG_MEDIA_TYPE }))

    // From the cache: the same artifact, no second export.
    expect(made(gw)).toBe(1)
    const again = performance.now()
    const second = await getManifest('1.sif')
    const secondMs = performance.now() - again
    const head = await getManifest('1.sif', 'HEAD')
    expect(second.status).toBe(200)
    expect(second.body).toBe(first.body)
    expect(head.status).toBe(200)
    expect(head.digest).toBe(first.digest)
    expect(made(gw)).toBe(1)
    console.log(`SIF artifact: first GET ${firstMs.toFixed(0)} ms (export), second GET ${secondMs.toFixed(1)} ms (cache), SIF ${bytes.byteLength} bytes`)

    // A tag naming nothing has no SIF either.
    expect((await getManifest('9.sif')).status).toBe(404)
  }, 180_000)

  it('shares one export between concurrent first requests, and ties the SIF to the image, not the tag', async () => {
    const before = made(gw)
    const [a, b] = await Promise.all([getManifest('2.sif'), getManifest('2.sif')])
    expect(a.status, a.body).toBe(200)
    expect(b.digest).toBe(a.digest)
    // hpc/tool:2 is the same image as :1, so its SIF is the one already made.
    expect(a.digest).toBe((await getManifest('1.sif')).digest)
    expect(made(gw)).toBe(before)
  }, 180_000)

  it('builds with Bootstrap: oras on the SIF the gateway serves', async () => {
    const r = await build(onSif(`${hostPort}/hpc/tool:1.sif`), [], buildData)
    expect(r.err).toBe('')
    expect(r.status).toBe(0)
  }, 300_000)

  it('stores a SIF pushed as oras push does, and builds on it with Bootstrap: oras through the gateway', async () => {
    const m = JSON.parse((await getManifest('1.sif')).body) as ArtifactManifest
    const sif = Buffer.from(await (await fetch(`${url}/v2/hpc/tool/blobs/${m.layers[0]!.digest}`)).arrayBuffer())
    const client = createRegistryClient({ registry: hostPort })
    const layer = { mediaType: SIF_LAYER_MEDIA_TYPE, digest: sha256Digest(sif), size: sif.byteLength, annotations: { 'org.opencontainers.image.title': 'app.sif' } }
    const config = new TextEncoder().encode('{}')
    await client.pushBlob('hpc/pushed', { digest: sha256Digest(config), size: config.byteLength }, config)
    await client.pushBlob('hpc/pushed', { digest: layer.digest, size: layer.size }, sif)
    const manifest = encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: SIF_CONFIG_MEDIA_TYPE, digest: sha256Digest(config), size: config.byteLength }, layers: [layer] })
    await client.pushManifest('hpc/pushed', '1.0', manifest, OCI_MANIFEST)

    const stored = await fetch(`${url}/v2/hpc/pushed/manifests/1.0`, { headers: ACCEPT })
    expect(stored.status).toBe(200)
    expect(stored.headers.get('docker-content-digest')).toBe(sha256Digest(manifest))
    const r = await build(onSif(`${hostPort}/hpc/pushed:1.0`), [], buildData)
    expect(r.err).toBe('')
    expect(r.status).toBe(0)
  }, 300_000)
})
