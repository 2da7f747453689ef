/**
 * Root emulation and kept ownership (docs/building.md), end to end as an
 * unprivileged user (uid 65534 when the tests run as root) under bwrap: a
 * Debian 12 base (test/helpers/debian-base.ts: mmdebstrap from Debian's
 * mirror, kept under TMPDIR/kiln-test-cache so later runs reuse it), and
 * an unmodified recipe that runs apt-get, useradd and chown and copies a
 * file with --chown. The layers are read back: apt's files are
 * there, the --chown file is 1001:1002 in its tar header, and the owners
 * set inside RUN (useradd -m, chown, install -o, dpkg's chowns of man-db's
 * cache, the base's own /etc/shadow group) are in the RUN layers' tar
 * headers, recorded by fakeroot's ledger, with no `flattened` annotation.
 * On a busybox (static) image the ledger cannot apply: the build says so
 * and the image is annotated `flattened`.
 *
 * apt needs the network: the recipe asks with `RUN --network=default` and the
 * build allows it with `kiln build --network` (docs/network.md).
 */
import { linkSync, mkdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeBusyboxBase } from '../../helpers/busybox-base.ts'
import { debianBaseFor } from '../../helpers/debian-base.ts'
import { readLayoutLayers } from '../../helpers/image-layers.ts'
import type { ImageLayer } from '../../helpers/image-layers.ts'
import { haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import { makeContext } from '../../helpers/context.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'

const DOCKERFILE = `FROM scratch
ADD rootfs.tar /
RUN --network=default apt-get update && apt-get install -y --no-install-recommends python3-minimal man-db
RUN useradd -m researcher && mkdir /data && chown researcher /data && chown -R researcher:researcher /home/researcher && install -d -o researcher -g 50 -m 2770 /data/shared
RUN echo 'export LAB=1' >> /home/researcher/.profile && chgrp researcher /data && chmod 750 /data
COPY --chown=1001:1002 notes.txt /data/notes.txt
RUN ["chown", "researcher:researcher", "/data/notes.txt"]
`

const busyboxDockerfile = (layout: string): string => `FROM oci:${layout}:base
RUN mkdir /data && chown 5:6 /data
`

const base = debianBaseFor(['setpriv', 'bwrap', 'mmdebstrap'])

describe.skipIf(base === undefined)('root emulation: an unmodified apt/useradd/chown recipe as an unprivileged user (bwrap)', () => {
  let u: Unprivileged
  let layers: ImageLayer[]
  let annotations: Record<string, string> | undefined
  let stderr = ''

  const entry = (layer: ImageLayer | undefined, name: string): ImageLayer['entries'][number] | undefined => layer?.entries.find(e => e.name === name)

  beforeAll(() => {
    u = makeUnprivileged()
    const ctx = join(u.work, 'ctx')
    mkdirSync(ctx)
    // A link, not a copy, of the 170 MB tar (a copy where the cache is on another filesystem).
    try { linkSync(base as string, join(ctx, 'rootfs.tar')) } catch { copyFileSync(base as string, join(ctx, 'rootfs.tar')) }
    writeFileSync(join(ctx, 'Dockerfile'), DOCKERFILE)
    writeFileSync(join(ctx, 'notes.txt'), 'field notes\n')
    u.give(ctx)
    const out = join(u.work, 'out')
    const r = u.kiln(['build', '--network', '-t', 'e2e/debian:1', '--output', `oci-layout:${out}`, ctx], { env: { KILN_SANDBOX: 'bwrap' }, timeoutMs: 600_000 })
    stderr = r.stderr
    expect(r.status, r.stderr.slice(-3000)).toBe(0)
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
    const manifest = JSON.parse(readFileSync(join(out, 'blobs/sha256', (index.manifests[0]?.digest ?? '').replace('sha256:', '')), 'utf8')) as { annotations?: Record<string, string> }
    annotations = manifest.annotations
    return readLayoutLayers(out).then(l => { layers = l })
  }, 900_000)
  afterAll(() => { u?.cleanup() })

  it('runs apt-get update and install: python3 is in the apt layer', () => {
    const apt = layers[1]
    expect(entry(apt, 'usr/bin/python3')?.type).toBe('symlink')
    expect(entry(apt, 'usr/bin/python3.11')?.type).toBe('file')
    expect(entry(apt, 'var/lib/dpkg/status')?.body.toString()).toContain('Package: python3-minimal\nStatus: install ok installed')
  })

  it('runs useradd -m and chown: the user exists and its home and /data are in the layer', () => {
    const users = layers[2]
    expect(entry(users, 'etc/passwd')?.body.toString()).toMatch(/^researcher:x:1000:1000::\/home\/researcher:/m)
    expect(entry(users, 'home/researcher')?.type).toBe('directory')
    expect(entry(users, 'data')?.type).toBe('directory')
  })

  it('keeps the owners dpkg sets: man-db\'s cache is man:man in the apt layer', () => {
    expect(entry(layers[1], 'var/cache/man')).toMatchObject({ type: 'directory', uid: 6, gid: 12 })
    expect(entry(layers[1], 'usr/bin/python3.11')).toMatchObject({ uid: 0, gid: 0 })
  })

  it('keeps the owners useradd -m, chown and install -o set, and the base\'s owners of the files useradd rewrites', () => {
    const users = layers[2]
    expect(entry(users, 'home/researcher')).toMatchObject({ uid: 1000, gid: 1000 })
    expect(entry(users, 'home/researcher/.profile')).toMatchObject({ uid: 1000, gid: 1000 })
    expect(entry(users, 'data')).toMatchObject({ uid: 1000, gid: 0 })
    expect(entry(users, 'data/shared')).toMatchObject({ uid: 1000, gid: 50, mode: 0o2770 })
    // The base has /etc/shadow as root:shadow (42); useradd writes a new one with the owner it sees.
    expect(entry(users, 'etc/shadow')).toMatchObject({ uid: 0, gid: 42 })
    expect(entry(users, 'etc/passwd')).toMatchObject({ uid: 0, gid: 0 })
  })

  it('keeps owners across steps: a file of an earlier layer written again keeps its owner, a chgrp of one not written is in the layer', () => {
    const later = layers[3]
    expect(entry(later, 'home/researcher/.profile')).toMatchObject({ uid: 1000, gid: 1000 })
    expect(entry(later, 'home/researcher/.profile')?.body.toString()).toContain('export LAB=1')
    expect(entry(later, 'data')).toMatchObject({ type: 'directory', uid: 1000, gid: 1000, mode: 0o750 })
  })

  it('writes COPY --chown=1001:1002 exactly in the tar header', () => {
    expect(entry(layers[4], 'data/notes.txt')).toMatchObject({ uid: 1001, gid: 1002, body: Buffer.from('field notes\n') })
  })

  it('an exec-form RUN (chown looked up in PATH) that only chowns a file of an earlier layer puts it in its layer with the new owner', () => {
    expect(entry(layers[5], 'data/notes.txt')).toMatchObject({ uid: 1000, gid: 1000, body: Buffer.from('field notes\n') })
    expect(layers[5]?.entries.map(e => e.name)).toEqual(['data/notes.txt'])
  })

  it('annotates nothing and warns of nothing about ownership', () => {
    expect(annotations).toBeUndefined()
    expect(stderr).not.toContain('file ownership is not kept')
  })
})

describe.skipIf(!haveTools('setpriv', 'bwrap', 'busybox', 'umoci'))('ownership that cannot be kept: a static busybox image (bwrap)', () => {
  let u: Unprivileged
  afterAll(() => { u?.cleanup() })

  it('builds, says in the log why RUN\'s owners are not kept, annotates the image flattened, and writes 0:0', async () => {
    u = makeUnprivileged()
    const layout = makeBusyboxBase(u)
    const ctx = makeContext(u, { Dockerfile: busyboxDockerfile(layout) })
    const out = join(u.work, 'out')
    const r = u.kiln(['build', '-t', 'e2e/bb:1', '--output', `oci-layout:${out}`, ctx], { env: { KILN_SANDBOX: 'bwrap' }, timeoutMs: 300_000 })
    expect(r.status, r.stderr.slice(-3000)).toBe(0)
    expect(r.stderr).toMatch(/file ownership is not kept: Dockerfile:2: RUN: .*no glibc/)
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
    const manifest = JSON.parse(readFileSync(join(out, 'blobs/sha256', (index.manifests[0]?.digest ?? '').replace('sha256:', '')), 'utf8')) as { annotations?: Record<string, string> }
    expect(manifest.annotations).toEqual({ 'org.kiln.permissions': 'flattened' })
    const layers = await readLayoutLayers(out)
    expect(layers.at(-1)?.entries.find(e => e.name === 'data')).toMatchObject({ uid: 0, gid: 0 })
  }, 600_000)
})
