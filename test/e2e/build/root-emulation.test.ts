/**
 * Root emulation and kept ownership (docs/building.md), end to end as an
 * unprivileged user (uid 65534 when the tests run as root) under bwrap: a
 * Debian 12 base made by the bench's make-debian-base.sh (mmdebstrap, from
 * Debian's mirror; the tar is kept under TMPDIR/kiln-test-cache so later runs
 * reuse it), and an unmodified recipe that runs apt-get, useradd and chown
 * and copies a file with --chown. The layers are read back: apt's files are
 * there, the --chown file is 1001:1002 in its tar header, and RUN's owners,
 * which kiln does not record, are 0:0 with the image annotated `flattened`.
 *
 * apt needs the network: the recipe asks with `RUN --network=default` and the
 * build allows it with `kiln build --network` (docs/network.md).
 */
import { execFileSync } from 'node:child_process'
import { existsSync, linkSync, mkdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readLayoutLayers } from '../../helpers/image-layers.ts'
import type { ImageLayer } from '../../helpers/image-layers.ts'
import { haveTools } from '../../helpers/tools.ts'
import { isRoot, makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'

const MAKE_BASE = join(import.meta.dirname, '../../../../shared/bench/make-debian-base.sh')
/** Stable across runs, so the Debian base is made once per machine. */
const BASE_DIR = join(tmpdir(), 'kiln-test-cache', 'debian-bookworm')

const DOCKERFILE = `FROM scratch
ADD rootfs.tar /
RUN --network=default apt-get update && apt-get install -y --no-install-recommends python3-minimal
RUN useradd -m researcher && mkdir /data && chown researcher /data && chown -R researcher:researcher /home/researcher
COPY --chown=1001:1002 notes.txt /data/notes.txt
`

/** The base tar, made when missing (needs root: mmdebstrap --mode=root). */
function debianBase (): string | undefined {
  const tar = join(BASE_DIR, 'rootfs.tar')
  if (existsSync(tar)) return tar
  if (!isRoot()) return undefined
  execFileSync('bash', [MAKE_BASE, BASE_DIR], { stdio: 'ignore', timeout: 900_000 })
  return tar
}

const canRun = haveTools('setpriv', 'bwrap', 'mmdebstrap')
const base = canRun ? debianBase() : undefined
if (canRun && base === undefined) {
  if (process.env.CI === 'true') throw new Error(`CI=true but no Debian base at ${BASE_DIR} and not root to make one`)
  console.warn(`skipping: no Debian base at ${BASE_DIR}, and making one needs root`)
}

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

  it('writes COPY --chown=1001:1002 exactly in the tar header', () => {
    expect(entry(layers[3], 'data/notes.txt')).toMatchObject({ uid: 1001, gid: 1002, body: Buffer.from('field notes\n') })
  })

  it('keeps no owners set inside RUN (0:0), says so in the build log and annotates the image flattened', () => {
    expect([entry(layers[2], 'data')?.uid, entry(layers[2], 'home/researcher')?.uid]).toEqual([0, 0])
    expect(annotations).toEqual({ 'org.kiln.permissions': 'flattened' })
    expect(stderr).toContain('kiln: warning: file ownership is not kept: Dockerfile:3: RUN')
  })
})
