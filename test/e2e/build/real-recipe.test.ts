/**
 * One real, unmodified multi-stage apt recipe end to end, as uid 65534
 * (when the tests run as root) under bwrap, on the Debian 12 base of
 * test/helpers/debian-base.ts. The build stage installs gcc with apt-get
 * through a cache mount for /var/cache/apt, compiles a small C program
 * in a step that mounts a secret and checks its contents, and the final
 * stage starts again from the base, adds a user and copies the binary to
 * it with --chown, then chowns its data dir.
 *
 * The result is looked inside: unpacked with umoci and the binary run
 * (chroot in a user namespace); its layers hold the program and the user
 * but no compiler, no apt cache, no secret. The apt cache stayed on the
 * node, in the cache mount's dir.
 *
 * Run time: 129 s for the file, 88 s of it the build (apt-get from
 * Debian's mirror, then gcc), at a load average of 19-29 on 2 cores; the
 * beforeAll allows 15 minutes for a slower machine.
 */
import { copyFileSync, linkSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createHash, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { debianBaseFor } from '../../helpers/debian-base.ts'
import { readLayoutLayers } from '../../helpers/image-layers.ts'
import type { ImageLayer } from '../../helpers/image-layers.ts'
import { runAs, unpackAs } from '../../helpers/run-image.ts'
import type { Bundle } from '../../helpers/run-image.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'

const TOKEN = `tok-${randomBytes(16).toString('hex')}`

const HELLO_C = `#include <stdio.h>
#include <unistd.h>
int main(void) {
  printf("hello from kiln, built with gcc %d.%d, running as uid %d\\n", __GNUC__, __GNUC_MINOR__, (int)getuid());
  return 0;
}
`

// Unmodified apart from what it is about: a plain Dockerfile as BuildKit takes it.
const DOCKERFILE = `FROM scratch AS base
ADD rootfs.tar /

FROM base AS build
ARG TOKEN_SHA
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \\
    apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev
WORKDIR /src
COPY hello.c .
RUN --mount=type=secret,id=token,required \\
    test "$(sha256sum < /run/secrets/token | cut -d' ' -f1)" = "$TOKEN_SHA" && \\
    gcc -O2 -o hello hello.c && ./hello > built-by.txt

FROM base
RUN useradd -m -u 1000 researcher && mkdir /data && chown researcher:researcher /data
COPY --from=build --chown=researcher:researcher /src/hello /usr/local/bin/hello
USER researcher
WORKDIR /data
CMD ["/usr/local/bin/hello"]
`

const base = debianBaseFor(['setpriv', 'bwrap', 'mmdebstrap', 'umoci', 'unshare'])

describe.skipIf(base === undefined)('a real multi-stage apt recipe: cache mount, gcc, a secret, useradd and --chown (uid 65534, bwrap)', () => {
  let u: Unprivileged
  let out: string
  let layers: ImageLayer[]
  let config: { config?: { User?: string, WorkingDir?: string, Cmd?: string[] }, history?: Array<{ created_by?: string }> }
  let stderr = ''
  let seconds = 0
  let bundle: Bundle

  const entryIn = (name: string): ImageLayer['entries'][number] | undefined => layers.flatMap(l => l.entries).findLast(e => e.name === name)

  beforeAll(async () => {
    u = makeUnprivileged()
    const ctx = join(u.work, 'ctx')
    mkdirSync(ctx)
    // A link, not a copy, of the 170 MB tar (a copy where the cache is on another filesystem).
    try { linkSync(base as string, join(ctx, 'rootfs.tar')) } catch { copyFileSync(base as string, join(ctx, 'rootfs.tar')) }
    writeFileSync(join(ctx, 'Dockerfile'), DOCKERFILE)
    writeFileSync(join(ctx, 'hello.c'), HELLO_C)
    const tokenFile = join(u.work, 'token')
    writeFileSync(tokenFile, TOKEN, { mode: 0o600 })
    u.give(ctx)
    u.give(tokenFile)
    out = join(u.work, 'out')
    const started = Date.now()
    const r = u.kiln(['build', '--network', '--secret', `id=token,src=${tokenFile}`, '--build-arg', `TOKEN_SHA=${createHash('sha256').update(TOKEN).digest('hex')}`,
      '-t', 'e2e/hello:1', '--output', `oci-layout:${out}:1`, ctx], { env: { KILN_SANDBOX: 'bwrap' }, timeoutMs: 900_000 })
    seconds = (Date.now() - started) / 1000
    stderr = r.stderr
    expect(r.status, r.stderr.slice(-4000)).toBe(0)
    console.info(`real-recipe: kiln build took ${seconds.toFixed(1)} s`)
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
    const blob = (d: string): string => join(out, 'blobs/sha256', d.replace('sha256:', ''))
    const manifest = JSON.parse(readFileSync(blob(index.manifests[0]?.digest ?? ''), 'utf8')) as { config: { digest: string } }
    config = JSON.parse(readFileSync(blob(manifest.config.digest), 'utf8')) as typeof config
    layers = await readLayoutLayers(out)
    bundle = unpackAs(u, out, '1')
  }, 900_000)
  afterAll(() => { u?.cleanup() })

  it('runs the compiled program in the image as its user', () => {
    expect(config.config?.User).toBe('researcher')
    expect(config.config?.Cmd).toEqual(['/usr/local/bin/hello'])
    const said = runAs(u, bundle)
    expect(said).toMatch(/^hello from kiln, built with gcc 12\.\d+, running as uid \d+\n$/)
  })

  it('copies the binary with --chown to the user useradd made, exactly in the tar header', () => {
    expect(readFileSync(join(bundle.rootfs, 'etc/passwd'), 'utf8')).toMatch(/^researcher:x:1000:1000::\/home\/researcher:/m)
    expect(entryIn('usr/local/bin/hello')).toMatchObject({ type: 'file', uid: 1000, gid: 1000 })
    expect(entryIn('data')?.type).toBe('directory')
    expect(entryIn('home/researcher')?.type).toBe('directory')
  })

  it('leaves the build stage behind: no compiler, no apt cache, no secret in any layer', () => {
    const names = layers.flatMap(l => l.entries.map(e => e.name))
    expect(names.filter(n => /^usr\/bin\/gcc|^usr\/lib\/gcc\//.test(n))).toEqual([])
    expect(names.filter(n => /^var\/cache\/apt\/archives\/.+\.deb$/.test(n))).toEqual([])
    expect(names.filter(n => n.startsWith('run/secrets'))).toEqual([])
    for (const l of layers) expect(l.tar.includes(TOKEN)).toBe(false)
    // The build arg that checked it is a hash, and only in the build stage, which the image's history does not carry.
    expect(JSON.stringify(config)).not.toContain(TOKEN)
    expect(stderr).not.toContain(TOKEN)
  })

  it('kept apt\'s downloads in the cache mount on the node, not in a layer', () => {
    const debs = readdirSync(u.dataDir, { recursive: true }).map(String).filter(n => /cache-mounts\/.*archives\/gcc-12_.+\.deb$/.test(n))
    expect(debs.length, readdirSync(u.dataDir).join(' ')).toBeGreaterThan(0)
  })
})
