/**
 * `kiln build` end to end, run as an unprivileged user (uid 65534 when the
 * tests run as root): multi-stage Dockerfile and Apptainer definition from a
 * busybox base made here, the results run, accepted by skopeo and umoci,
 * reproducible across dirs, cached on rebuild; bad recipes fail cleanly.
 */
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeBusyboxBase } from '../../helpers/busybox-base.ts'
import { runAs, unpackAs } from '../../helpers/run-image.ts'
import { haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import { makeContext } from '../../helpers/context.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { mountsUnder, processesWith } from '../../unit/builder/fixtures.ts'

const DOCKERFILE = `FROM oci:LAYOUT:base AS build
ARG WHO=world
RUN mkdir -p /out && echo "hello $WHO" > /out/greeting && rm /bin/false
COPY notes.txt /out/
FROM oci:LAYOUT:base
COPY --from=build /out/ /app/
ENV SUFFIX=from-kiln
WORKDIR /app
RUN cat greeting notes.txt > message && echo "$SUFFIX" >> message
CMD ["cat", "/app/message"]
`

const DEFINITION = `Bootstrap: oci
From: LAYOUT:base

%files
    notes.txt /opt/notes.txt

%post
    mkdir -p /opt/tool
    echo "tool built" > /opt/tool/version

%environment
    export TOOL_MODE=apptainer-env

%runscript
    echo "mode=$TOOL_MODE"
    cat /opt/tool/version /opt/notes.txt
`

/**
 * The same tests for the automatically chosen driver (overlay diff) and for
 * proot (scan-based diff), selected by KILN_SANDBOX as a user would.
 */
const DRIVERS: Array<{ sandbox: 'auto' | 'proot', tools: string[] }> = [
  { sandbox: 'auto', tools: [] },
  { sandbox: 'proot', tools: ['proot'] }
]

describe.each(DRIVERS)('kiln build as an unprivileged user (sandbox $sandbox)', ({ sandbox, tools }) => {
  if (!haveTools('setpriv', 'skopeo', 'umoci', 'busybox', ...tools)) { it.skip('needs the tools', () => {}); return }

  let u: Unprivileged
  let layout: string
  let ctx: string

  const write = (name: string, files: Record<string, string>): string => makeContext(u, files, { LAYOUT: layout }, name)

  const build = (args: string[], dataDir?: string): { status: number | null, out: string, err: string, json?: { digest: string, steps: number, cachedSteps: number, sandboxDriver: string | null, stepReports: Array<{ op: string, cached: boolean }> } } => {
    const r = u.kiln(['build', '--json', ...args], { env: { KILN_SANDBOX: sandbox }, ...(dataDir === undefined ? {} : { dataDir }) })
    let json
    try { json = JSON.parse(r.stdout) } catch { json = undefined }
    return { status: r.status, out: r.stdout, err: r.stderr, json }
  }

  const runImage = (layoutDir: string, tag: string): string => runAs(u, unpackAs(u, layoutDir, tag))

  beforeAll(() => {
    u = makeUnprivileged()
    layout = makeBusyboxBase(u)
    ctx = write('ctx', { Dockerfile: DOCKERFILE, 'Singularity.def': DEFINITION, 'notes.txt': 'notes from the context\n' })
  }, 120_000)
  afterAll(() => { u?.cleanup() })

  it('builds a multi-stage Dockerfile whose result runs and that skopeo and umoci accept', () => {
    const out = join(u.work, 'out-docker')
    const r = build(['-t', 'e2e/docker:1', '--output', `oci-layout:${out}`, '--build-arg', 'WHO=cluster', ctx])
    expect(r.status, r.err).toBe(0)
    console.log(`sandbox driver used as uid ${u.uid}: ${String(r.json?.sandboxDriver)}`)
    expect(r.json?.sandboxDriver).toMatch(sandbox === 'proot' ? /^proot$/ : /^(bwrap|unshare|proot)$/)
    expect(r.json?.digest).toMatch(/^sha256:/)
    const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${out}:1`], { encoding: 'utf8' })) as { Digest: string, Layers: string[] }
    expect(inspect.Digest).toBe(r.json?.digest)
    expect(runImage(out, '1')).toBe('hello cluster\nnotes from the context\nfrom-kiln\n')
  })

  it('builds an Apptainer definition whose runscript and environment work when the image runs', () => {
    const out = join(u.work, 'out-apptainer')
    const r = build(['-f', join(ctx, 'Singularity.def'), '-t', 'e2e/tool:1', '--output', `oci-layout:${out}`, ctx])
    expect(r.status, r.err).toBe(0)
    expect(runImage(out, '1')).toBe('mode=apptainer-env\ntool built\nnotes from the context\n')
  })

  it('gives the same digest again, from a different dir and data dir, and hits the cache for every step on rebuild', () => {
    const first = build([ctx])
    expect(first.status, first.err).toBe(0)
    const again = build([ctx])
    expect(again.json?.digest).toBe(first.json?.digest)
    expect(again.json?.cachedSteps).toBe(again.json?.steps)
    const ctx2 = join(u.work, 'elsewhere', 'ctx')
    cpSync(ctx, ctx2, { recursive: true })
    u.give(join(u.work, 'elsewhere'))
    const otherData = join(u.work, 'other-data')
    mkdirSync(otherData); u.give(otherData)
    const other = build([ctx2], otherData)
    expect(other.status, other.err).toBe(0)
    expect(other.json?.cachedSteps).toBe(0)
    expect(other.json?.digest).toBe(first.json?.digest)
  })

  it('reruns only the steps from a changed COPY input on', () => {
    const c = write('ctx-change', { Dockerfile: DOCKERFILE, 'notes.txt': 'v1\n' })
    expect(build([c]).status).toBe(0)
    writeFileSync(join(c, 'notes.txt'), 'v2\n')
    const r = build([c])
    expect(r.status, r.err).toBe(0)
    // ARG, RUN (cached), COPY notes.txt (changed), then the second stage: every layer step from the COPY on reruns.
    const fsSteps = (r.json?.stepReports ?? []).filter(s => s.op === 'run' || s.op === 'copy').map(s => `${s.op}:${s.cached ? 'cached' : 'ran'}`)
    expect(fsSteps).toEqual(['run:cached', 'copy:ran', 'copy:ran', 'run:ran'])
  })

  it.runIf(sandbox === 'proot' && haveTools('bwrap'))('gives the digest the bwrap driver gives, for the Dockerfile and the Apptainer definition', () => {
    for (const recipe of ['Dockerfile', 'Singularity.def']) {
      const data = { proot: join(u.work, `same-proot-${recipe}`), bwrap: join(u.work, `same-bwrap-${recipe}`) }
      for (const d of Object.values(data)) { mkdirSync(d); u.give(d) }
      const viaProot = build(['-f', join(ctx, recipe), ctx], data.proot)
      const viaBwrap = build(['-f', join(ctx, recipe), '--sandbox', 'bwrap', ctx], data.bwrap)
      expect(viaProot.status, viaProot.err).toBe(0)
      expect(viaBwrap.status, viaBwrap.err).toBe(0)
      expect(viaProot.json?.sandboxDriver).toBe('proot')
      expect(viaBwrap.json?.sandboxDriver).toBe('bwrap')
      expect(viaProot.json?.digest).toBe(viaBwrap.json?.digest)
    }
  })

  const bad: Array<[string, Record<string, string>, number, RegExp]> = [
    ['an unknown instruction', { Dockerfile: 'FROM oci:LAYOUT:base\nFROBNICATE x\n' }, 2, /Dockerfile:2/],
    ['an unterminated heredoc', { Dockerfile: 'FROM oci:LAYOUT:base\nRUN <<EOF\necho hi\n' }, 2, /Dockerfile:2/],
    ['a COPY from outside the context', { Dockerfile: 'FROM oci:LAYOUT:base\nCOPY ../../etc/passwd /x\n' }, 2, /Dockerfile:2: .*outside the build context/],
    ['a missing base', { Dockerfile: 'FROM oci:/nonexistent/layout:base\nRUN true\n' }, 3, /Dockerfile:1: base image oci:\/nonexistent\/layout:base: cannot read the OCI image layout at \/nonexistent\/layout/],
    ['a failing RUN', { Dockerfile: 'FROM oci:LAYOUT:base\nRUN sleep 7373 & echo partial; exit 3\n' }, 5, /Dockerfile:2: RUN failed with exit code 3/]
  ]
  for (const [what, files, code, message] of bad) {
    it(`fails clearly on ${what}, leaving no process, mount or new ref behind`, () => {
      const c = write(`bad-${what.replaceAll(' ', '-')}`, files)
      const before = u.kiln(['image', 'ls', '--json']).stdout
      const r = build(['-t', 'e2e/bad:1', c])
      expect(r.status, r.err).toBe(code)
      expect(r.err).toMatch(message)
      expect(processesWith('sleep\u00007373')).toEqual([])
      expect(mountsUnder(u.root)).toEqual([])
      expect(u.kiln(['image', 'ls', '--json']).stdout).toBe(before)
    })
  }
})
