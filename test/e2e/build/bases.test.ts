/**
 * Where `kiln build` finds its bases, end to end as an unprivileged user:
 * a registry (Debian's docker-registry on loopback, the image pushed there
 * by skopeo) by `docker://` and by plain name, `COPY --from=IMAGE`, the
 * local store winning over a registry name, oci-archive and docker-archive
 * files, a base missing from its registry (exit 3 naming the ref and the
 * line), and a stored registry base used without asking the registry again.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeBusyboxBase } from '../../helpers/busybox-base.ts'
import { haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import { makeContext } from '../../helpers/context.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { startDockerRegistry } from '../../integration/registry/docker-registry.ts'
import type { DockerRegistry } from '../../integration/registry/docker-registry.ts'

describe.skipIf(!haveTools('setpriv', 'skopeo', 'umoci', 'busybox', 'docker-registry'))('kiln build bases', () => {
  let u: Unprivileged
  let registry: DockerRegistry | undefined
  let host: string
  let layout: string
  let n = 0

  const build = (dockerfile: string, options: { dataDir?: string, files?: Record<string, string> } = {}): { status: number | null, err: string, json?: { digest: string } } => {
    const ctx = makeContext(u, { Dockerfile: dockerfile, ...options.files })
    const r = u.kiln(['build', '--json', ctx], options.dataDir === undefined ? {} : { dataDir: options.dataDir })
    let json
    try { json = JSON.parse(r.stdout) } catch { json = undefined }
    return { status: r.status, err: r.stderr, json }
  }

  const freshDataDir = (): string => {
    const d = join(u.work, `data-${++n}`)
    mkdirSync(d)
    u.give(d)
    return d
  }

  beforeAll(async () => {
    u = makeUnprivileged()
    layout = makeBusyboxBase(u)
    execFileSync('skopeo', ['copy', '-q', `oci:${layout}:base`, `oci-archive:${join(u.work, 'base.oci.tar')}`])
    execFileSync('skopeo', ['copy', '-q', `oci:${layout}:base`, `docker-archive:${join(u.work, 'base.docker.tar')}:kiln/busybox:1`])
    u.give(u.work)
    registry = await startDockerRegistry()
    host = registry.hostPort
    execFileSync('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${layout}:base`, `docker://${host}/kiln/busybox:1`])
  }, 120_000)
  afterAll(async () => {
    await registry?.stop()
    u?.cleanup()
  })

  it('pulls a docker:// base and a COPY --from=docker:// image from the registry and names the base in the store', () => {
    const r = build(`FROM docker://${host}/kiln/busybox:1\nRUN echo pulled > /from-registry\nCOPY --from=docker://${host}/kiln/busybox:1 /etc/passwd /copied/passwd\n`)
    expect(r.status, r.err).toBe(0)
    const refs = JSON.parse(u.kiln(['image', 'ls', '--json']).stdout) as Array<{ name?: string, repository?: string }>
    expect(JSON.stringify(refs)).toContain(`${host}/kiln/busybox`)
  })

  it('reads a plain registry name in FROM as buildah does, and gives the same image as the OCI layout base', () => {
    const fromRegistry = build(`FROM ${host}/kiln/busybox:1\nRUN echo same > /same\n`, { dataDir: freshDataDir() })
    expect(fromRegistry.status, fromRegistry.err).toBe(0)
    const fromLayout = build(`FROM oci:${layout}:base\nRUN echo same > /same\n`, { dataDir: freshDataDir() })
    expect(fromLayout.status, fromLayout.err).toBe(0)
    expect(fromRegistry.json?.digest).toBe(fromLayout.json?.digest)
  })

  it('prefers a name in the local store to the registry the name would mean (FROM busybox never asks docker.io)', () => {
    const data = freshDataDir()
    const imp = u.kiln(['image', 'import', `oci:${layout}:base`, '-t', 'busybox:latest'], { dataDir: data })
    expect(imp.status, imp.stderr).toBe(0)
    const r = build('FROM busybox\nRUN test -x /bin/busybox\n', { dataDir: data })
    expect(r.status, r.err).toBe(0)
  })

  it('builds from oci-archive: and docker-archive: files', () => {
    const a = build(`FROM oci-archive:${join(u.work, 'base.oci.tar')}\nRUN echo a > /a\n`)
    expect(a.status, a.err).toBe(0)
    const d = build(`FROM docker-archive:${join(u.work, 'base.docker.tar')}\nRUN echo d > /d\n`)
    expect(d.status, d.err).toBe(0)
  })

  it('exits 3 naming the ref, the line and what to do when the registry lacks the base', () => {
    const r = build(`FROM scratch\nCOPY --from=${host}/kiln/nothere:1 /x /x\n`)
    expect(r.status, r.err).toBe(3)
    expect(r.err).toMatch(new RegExp(`Dockerfile:2: base image ${host}/kiln/nothere:1: cannot pull .*; check the name and tag`))
    const missing = build(`FROM docker://${host}/kiln/busybox:nope\n`)
    expect(missing.status, missing.err).toBe(3)
    expect(missing.err).toMatch(/Dockerfile:1: base image docker:\/\/.*busybox:nope/)
  })

  it('uses a registry base already in the store without asking the registry (pull policy missing)', async () => {
    await registry?.stop()
    registry = undefined
    const r = build(`FROM docker://${host}/kiln/busybox:1\nRUN echo offline > /offline\n`)
    expect(r.status, r.err).toBe(0)
  })
})
