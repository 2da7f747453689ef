/**
 * Recipes as research software engineers write them, unmodified, on the
 * Debian 12 base, as the unprivileged user with the default sandbox and no
 * network: system users with `--chown --chmod` copies of a config dir, a
 * user's HOME under USER, setuid/setgid/sticky bits and `chown -h`, and
 * the Dockerfile forms (ARG before FROM, SHELL, heredocs, COPY heredoc,
 * HEALTHCHECK, a shell-form ENTRYPOINT). Each result is looked inside: its
 * layers' tar headers and files, and its config.
 *
 * Run time: about 2 minutes at a load average of 16 on 2 cores.
 */
import { copyFileSync, linkSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeContext } from '../../helpers/context.ts'
import { debianBaseFor } from '../../helpers/debian-base.ts'
import { readLayoutLayers } from '../../helpers/image-layers.ts'
import type { LayerEntry } from '../../helpers/image-layers.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'

const base = debianBaseFor(['setpriv', 'bwrap', 'mmdebstrap', 'unshare', 'tar'])

const BASE = 'e2e/debian:12'

interface Built { entries: LayerEntry[], config: { config?: Record<string, unknown> } }

describe.skipIf(base === undefined)('everyday recipes on the Debian base (uid 65534, default sandbox)', () => {
  let u: Unprivileged
  let n = 0

  const context = (dockerfile: string, files: Record<string, string | Buffer> = {}): string => makeContext(u, { Dockerfile: dockerfile, ...files })

  /** Builds the recipe to an OCI layout; the entries of the layers above the base (the last of a path wins), and the config. */
  const build = async (dockerfile: string, files: Record<string, string | Buffer> = {}): Promise<Built> => {
    const out = join(u.work, `out-${++n}`)
    const r = u.kiln(['build', '--output', `oci:${out}:1`, context(dockerfile, files)], { timeoutMs: 300_000 })
    expect(r.status, r.stderr.slice(-3000)).toBe(0)
    const blob = (digest: string): Buffer => readFileSync(join(out, 'blobs/sha256', digest.slice(7)))
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
    const manifest = JSON.parse(blob(index.manifests[0]?.digest ?? '').toString()) as { config: { digest: string } }
    const layers = await readLayoutLayers(out)
    return { entries: layers.slice(1).flatMap(l => l.entries), config: JSON.parse(blob(manifest.config.digest).toString()) as Built['config'] }
  }
  const entry = (b: Built, name: string): LayerEntry | undefined => b.entries.findLast(e => e.name === name)
  const text = (b: Built, name: string): string | undefined => entry(b, name)?.body.toString()

  beforeAll(() => {
    u = makeUnprivileged()
    const ctx = join(u.work, 'base-ctx')
    mkdirSync(ctx)
    try { linkSync(base as string, join(ctx, 'rootfs.tar')) } catch { copyFileSync(base as string, join(ctx, 'rootfs.tar')) }
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nADD rootfs.tar /\n')
    u.give(ctx)
    const r = u.kiln(['build', '-q', '-t', BASE, ctx], { timeoutMs: 300_000 })
    if (r.status !== 0) throw new Error(`the Debian base does not build: ${r.stderr}`)
  }, 300_000)
  // The data dir holds the unpacked Debian base and its snapshots: removing them takes a while on a loaded machine.
  afterAll(() => { u?.cleanup() }, 300_000)

  it('a system user and a config dir copied with --chown and --chmod=0640, a script with --chmod=755, a tar ADDed with --chown', async () => {
    const payload = join(u.work, 'payload')
    mkdirSync(join(payload, 'p', 'sub'), { recursive: true })
    writeFileSync(join(payload, 'p', 'sub', 'f'), 'p\n')
    const tgz = execFileSync('tar', ['-C', payload, '--owner=42', '--group=43', '-cz', 'p'])
    const b = await build(`FROM ${BASE}
RUN groupadd -r svc && useradd -r -g svc -d /srv/app -s /usr/sbin/nologin svc
COPY --chown=svc:svc --chmod=0640 conf/ /etc/app/
COPY --chmod=755 run.sh /usr/local/bin/
ADD --chown=1234:5678 payload.tar.gz /opt/
USER svc:svc
`, { 'conf/app.ini': 'a=1\n', 'run.sh': '#!/bin/sh\necho run\n', 'payload.tar.gz': tgz })
    const svc = /^svc:x:(\d+):(\d+):/m.exec(text(b, 'etc/passwd') ?? '')
    expect(svc, 'svc in /etc/passwd').not.toBeNull()
    expect(entry(b, 'etc/app/app.ini')).toMatchObject({ type: 'file', mode: 0o640, uid: Number(svc?.[1]), gid: Number(svc?.[2]) })
    expect(text(b, 'etc/app/app.ini')).toBe('a=1\n')
    expect(entry(b, 'usr/local/bin/run.sh')).toMatchObject({ type: 'file', mode: 0o755, uid: 0, gid: 0 })
    expect(entry(b, 'opt/p/sub/f')).toMatchObject({ type: 'file', uid: 1234, gid: 5678 })
    expect(b.config.config?.User).toBe('svc:svc')
  }, 300_000)

  it('RUN steps get HOME as Docker gives it: root\'s, then the USER\'s from /etc/passwd', async () => {
    const b = await build(`FROM ${BASE}
RUN echo "$HOME" > /root-home && useradd -m -s /bin/bash -u 1001 researcher
USER researcher
RUN echo "$HOME" > /tmp/researcher-home && mkdir -p ~/.local/bin && touch ~/.local/bin/tool
USER 4242
RUN echo "$HOME" > /tmp/nobody-home
`)
    expect(text(b, 'root-home')).toBe('/root\n')
    expect(text(b, 'tmp/researcher-home')).toBe('/home/researcher\n')
    expect(entry(b, 'home/researcher/.local/bin/tool')?.type).toBe('file')
    expect(text(b, 'tmp/nobody-home')).toBe('/\n')
  }, 300_000)

  // ENV expands against the base image's config (runRecipe resolves the bases, then parses again with their
  // environments): `$PATH` is the base's PATH, and a variable only the base sets is seen.
  it('ENV PATH=/opt/venv/bin:$PATH extends the PATH the base image has, as BuildKit does', async () => {
    const envBase = context(`FROM ${BASE}\nENV PATH=/base/bin:/usr/local/bin:/usr/bin:/bin FOO=bar\n`)
    expect(u.kiln(['build', '-q', '-t', 'e2e/env-base:1', envBase]).status).toBe(0)
    const b = await build(`FROM e2e/env-base:1
ENV PATH=/opt/venv/bin:$PATH X=$FOO
RUN mkdir -p /opt/venv/bin && printf '#!/bin/sh\\necho from venv\\n' > /opt/venv/bin/tool && chmod +x /opt/venv/bin/tool && tool > /said
`)
    const env = new Map(((b.config.config?.Env ?? []) as string[]).map(kv => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]))
    expect(env.get('PATH')).toBe('/opt/venv/bin:/base/bin:/usr/local/bin:/usr/bin:/bin')
    expect(env.get('X')).toBe('bar')
    expect(text(b, 'said')).toBe('from venv\n')
  }, 300_000)

  it('setuid, setgid and sticky bits, chown of a file and chown -h of a link', async () => {
    const b = await build(`FROM ${BASE}
RUN cp /bin/true /usr/local/bin/suid-true && chmod 4755 /usr/local/bin/suid-true \\
 && cp /bin/true /usr/local/bin/sgid-true && chown root:staff /usr/local/bin/sgid-true && chmod 2755 /usr/local/bin/sgid-true \\
 && mkdir -m 1777 /scratch && echo data > /opt/a && chown nobody /opt/a && chmod 0600 /opt/a \\
 && ln -s /opt/a /opt/link && chown -h nobody:nogroup /opt/link
`)
    expect(entry(b, 'usr/local/bin/suid-true')).toMatchObject({ mode: 0o4755, uid: 0, gid: 0 })
    expect(entry(b, 'usr/local/bin/sgid-true')).toMatchObject({ mode: 0o2755, uid: 0, gid: 50 })
    expect(entry(b, 'scratch')).toMatchObject({ type: 'directory', mode: 0o1777 })
    expect(entry(b, 'opt/a')).toMatchObject({ type: 'file', mode: 0o600, uid: 65534, gid: 0 })
    expect(entry(b, 'opt/link')).toMatchObject({ type: 'symlink', linkname: '/opt/a', uid: 65534, gid: 65534 })
  }, 300_000)

  it('ARG before FROM, SHELL bash, RUN heredocs, a COPY heredoc, HEALTHCHECK and a shell-form ENTRYPOINT', async () => {
    const b = await build(`# syntax=docker/dockerfile:1
ARG BASE=${BASE}
FROM $BASE
ARG BASE
SHELL ["/bin/bash", "-c"]
RUN <<EOF
set -euo pipefail
arr=(one two three)
echo "\${arr[1]} from bash" > /etc/greeting
echo "base was \${BASE}" >> /etc/greeting
EOF
RUN <<-SCRIPT bash
	echo tabbed >> /etc/greeting
	SCRIPT
COPY <<EOF /usr/local/bin/start.sh
#!/bin/sh
cat /etc/greeting
EOF
RUN chmod +x /usr/local/bin/start.sh && [[ -x /usr/local/bin/start.sh ]]
HEALTHCHECK --interval=30s --timeout=3s --retries=3 CMD test -f /etc/greeting || exit 1
ENTRYPOINT /usr/local/bin/start.sh shell-form
`)
    expect(text(b, 'etc/greeting')).toBe(`two from bash\nbase was ${BASE}\ntabbed\n`)
    expect(text(b, 'usr/local/bin/start.sh')).toBe('#!/bin/sh\ncat /etc/greeting\n')
    expect(entry(b, 'usr/local/bin/start.sh')?.mode).toBe(0o755)
    expect(b.config.config?.Entrypoint).toEqual(['/bin/bash', '-c', '/usr/local/bin/start.sh shell-form'])
    expect(b.config.config?.Healthcheck).toMatchObject({ Test: ['CMD-SHELL', 'test -f /etc/greeting || exit 1'], Interval: 30e9, Timeout: 3e9, Retries: 3 })
  }, 300_000)
})
