/**
 * SIF in and out, end to end as an unprivileged user (uid 65534 when the
 * tests run as root), with the real squashfs-tools:
 * - `kiln build --output type=sif` of an Apptainer definition on the busybox
 *   base: the SIF unsquashes to the built files, Apptainer's metadata and
 *   the definition; built twice it is the same bytes;
 * - a definition with `Bootstrap: localimage` of that SIF builds and sees it;
 * - `Bootstrap: oras` of that SIF pushed as an ORAS artifact to Debian's
 *   docker-registry on loopback builds;
 * - `Bootstrap: library` against a loopback library service (busybox httpd
 *   serving the library API's imagefile path) named in kiln.yaml builds; without `build.libraryUrl` it fails, saying so.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sha256Digest } from '../../../src/content/index.ts'
import { OCI_MANIFEST, encodeJson } from '../../../src/oci/index.ts'
import { createRegistryClient } from '../../../src/registry/index.ts'
import { SIF_CONFIG_MEDIA_TYPE, SIF_LAYER_MEDIA_TYPE, readObject, readSif } from '../../../src/sif/index.ts'
import { makeBusyboxBase } from '../../helpers/busybox-base.ts'
import { freePort, startHttpService } from '../../helpers/http-service.ts'
import { findTool, haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { startDockerRegistry } from '../../integration/registry/docker-registry.ts'
import type { DockerRegistry } from '../../integration/registry/docker-registry.ts'

const DEFINITION = `Bootstrap: oci
From: LAYOUT:base

%post
    mkdir -p /opt/tool
    echo "tool built" > /opt/tool/version

%environment
    export TOOL_MODE=apptainer-env

%labels
    org.example.team hpc

%runscript
    cat /opt/tool/version
`

/** A definition on a SIF base that checks the base's file is there. */
const onSif = (bootstrap: string, from: string): string => `Bootstrap: ${bootstrap}
From: ${from}

%post
    test "$(cat /opt/tool/version)" = "tool built"
    echo "${bootstrap}" > /opt/derived
`

describe.skipIf(!haveTools('setpriv', 'busybox', 'umoci', 'mksquashfs', 'unsquashfs', 'docker-registry'))('SIF in and out', () => {
  let u: Unprivileged
  let layout: string
  let registry: DockerRegistry | undefined
  let library: { stop: () => Promise<void> } | undefined
  let sif: string
  let n = 0

  const build = (definition: string, args: string[], env: Record<string, string> = {}): { status: number | null, err: string, json?: { digest: string } } => {
    const ctx = join(u.work, `ctx-${++n}`)
    mkdirSync(ctx)
    writeFileSync(join(ctx, 'Singularity.def'), definition.replaceAll('LAYOUT', layout))
    u.give(ctx)
    const r = u.kiln(['build', '--json', '-f', join(ctx, 'Singularity.def'), ...args, ctx], { env: { SOURCE_DATE_EPOCH: '1700000000', ...env } })
    let json
    try { json = JSON.parse(r.stdout) } catch { json = undefined }
    return { status: r.status, err: r.stderr, json }
  }

  beforeAll(async () => {
    u = makeUnprivileged()
    layout = makeBusyboxBase(u)
    const out = join(u.work, 'out')
    mkdirSync(out)
    u.give(out)
    sif = join(out, 'app.sif')
    const r = build(DEFINITION, ['--output', `type=sif,dest=${sif}`])
    expect(r.err).toBe('')
    expect(r.status).toBe(0)
  }, 300_000)
  afterAll(async () => {
    await registry?.stop()
    await library?.stop()
    u?.cleanup()
  })

  it('writes a SIF that unsquashes to the build, with Apptainer metadata and the definition', async () => {
    const file = await readSif(sif)
    expect(file.header.launchScript).toBe('#!/usr/bin/env run-singularity\n')
    expect(file.header.createdAt).toBe(1700000000)
    expect(file.objects.map(o => o.dataType)).toEqual(['deffile', 'partition'])
    expect(Buffer.from(await readObject(file, file.objects[0]!)).toString()).toBe(DEFINITION.replaceAll('LAYOUT', layout))
    const part = file.objects[1]!
    expect(part.partition).toMatchObject({ fsType: 'squashfs', partType: 'primarySystem' })

    const root = join(u.work, 'unsquashed')
    const r = u.exec('unsquashfs', ['-no-xattrs', '-quiet', '-no-progress', '-offset', String(part.offset), '-dest', root, sif])
    expect(r.status).toBe(0)
    expect(readFileSync(join(root, 'opt/tool/version'), 'utf8')).toBe('tool built\n')
    expect(readFileSync(join(root, 'bin/busybox')).byteLength).toBeGreaterThan(100_000)
    const meta = join(root, '.singularity.d')
    expect(readFileSync(join(meta, 'runscript'), 'utf8')).toContain('cat /opt/tool/version')
    expect(readFileSync(join(meta, 'env/90-environment.sh'), 'utf8')).toContain('TOOL_MODE=apptainer-env')
    expect(readFileSync(join(meta, 'env/10-docker2singularity.sh'), 'utf8')).toMatch(/^#!\/bin\/sh\n(export [A-Z_]+='.*'\n)*$/)
    expect(JSON.parse(readFileSync(join(meta, 'labels.json'), 'utf8'))).toMatchObject({ 'org.example.team': 'hpc' })
    expect(readFileSync(join(meta, 'Singularity'), 'utf8')).toBe(DEFINITION.replaceAll('LAYOUT', layout))
    // The runscript runs in the image: busybox's sh reads it.
    const run = u.exec(join(root, 'bin/busybox'), ['sh', '-c', `sed 's|/opt/tool|${root}/opt/tool|' ${join(meta, 'runscript')} | ${join(root, 'bin/busybox')} sh`])
    expect(run.stdout).toBe('tool built\n')
  })

  it('writes the same SIF bytes when the build is repeated', () => {
    const again = join(u.work, 'out', 'again.sif')
    const r = build(DEFINITION, ['--output', `sif:${again}`])
    expect(r.status).toBe(0)
    expect(readFileSync(again).equals(readFileSync(sif))).toBe(true)
  })

  it('builds on the SIF with Bootstrap: localimage', () => {
    const r = build(onSif('localimage', sif), [])
    expect(r.err).toBe('')
    expect(r.status).toBe(0)
    expect(r.json?.digest).toMatch(/^sha256:/)
  })

  it('builds on the SIF pushed as an ORAS artifact with Bootstrap: oras', async () => {
    registry = await startDockerRegistry()
    const client = createRegistryClient({ registry: registry.hostPort })
    const bytes = readFileSync(sif)
    const layer = { mediaType: SIF_LAYER_MEDIA_TYPE, digest: sha256Digest(bytes), size: bytes.byteLength, annotations: { 'org.opencontainers.image.title': 'app.sif' } }
    const config = new TextEncoder().encode('{}')
    await client.pushBlob('kiln/app', { digest: sha256Digest(config), size: config.byteLength }, config)
    await client.pushBlob('kiln/app', { digest: layer.digest, size: layer.size }, bytes)
    const manifest = encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: SIF_CONFIG_MEDIA_TYPE, digest: sha256Digest(config), size: config.byteLength }, layers: [layer] })
    await client.pushManifest('kiln/app', '1.0', manifest, OCI_MANIFEST)

    const r = build(onSif('oras', `${registry.hostPort}/kiln/app:1.0`), [])
    expect(r.err).toBe('')
    expect(r.status).toBe(0)
    const missing = build(onSif('oras', `${registry.hostPort}/kiln/none:1.0`), [])
    expect(missing.status).not.toBe(0)
    expect(missing.err).toContain(`oras://${registry.hostPort}/kiln/none:1.0`)
  })

  it('builds on a library image from the configured service, and refuses library with none configured', async () => {
    // A separate process: kiln runs synchronously here, so a server in this process could not answer it.
    const site = join(u.work, 'library')
    mkdirSync(join(site, 'v1/imagefile/library/default'), { recursive: true })
    writeFileSync(join(site, 'v1/imagefile/library/default/app:1.0'), readFileSync(sif))
    const port = await freePort()
    library = await startHttpService('busybox httpd', findTool('busybox') as string, ['httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', site], `http://127.0.0.1:${port}/v1/imagefile/library/default/app:1.0`)
    const config = join(u.work, 'kiln.yaml')
    writeFileSync(config, `build:\n  libraryUrl: http://127.0.0.1:${port}\n`)
    u.give(config)

    const r = build(onSif('library', 'app:1.0'), [], { KILN_CONFIG: config })
    expect(r.err).toBe('')
    expect(r.status).toBe(0)

    const refused = build(onSif('library', 'app:1.0'), [])
    expect(refused.status).not.toBe(0)
    expect(refused.err).toContain('no library service is configured')
    expect(refused.err).toContain('build.libraryUrl')
  })
})
