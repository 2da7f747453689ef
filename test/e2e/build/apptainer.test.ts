/**
 * Apptainer definitions end to end, built by `kiln build` as an unprivileged
 * user (uid 65534 when the tests run as root), and looked at from inside the
 * result:
 * - SCIF apps on a busybox base: the /scif layout, %appinstall run in the
 *   app base, %appfiles copied, the app's runscript run with its
 *   environment; %post and the image runscript; %test run at the end of each
 *   stage, leaving nothing in the image (nor in what a later stage copies),
 *   a failing %test failing the build and `--notest` skipping it. For the
 *   overlay drivers and for proot (scan mode, where a check runs in a copy
 *   of a root a later stage reads).
 * - `Bootstrap: debootstrap` from deb.debian.org (mmdebstrap, fakechroot):
 *   a Debian system whose %post, runscript and %test work.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeBusyboxBase } from '../../helpers/busybox-base.ts'
import { runAs, unpackAs } from '../../helpers/run-image.ts'
import { haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'

const APPS = `Bootstrap: oci
From: LAYOUT:base
Stage: build

%post
    mkdir -p /opt/tool && echo "tool 1.0" > /opt/tool/VERSION

%test
    echo "stage test ran" > /opt/tool/test-marker
    grep -q "tool 1.0" /opt/tool/VERSION

Bootstrap: oci
From: LAYOUT:base
Stage: final

%files from build
    /opt/tool /opt/tool

%post
    echo "post ran" > /etc/post-marker

%appfiles hello
    hello.sh bin/hello

%appinstall hello
    chmod 755 bin/hello
    echo "installed in $PWD as $SCIF_APPNAME" > install.log

%appenv hello
    GREETING=bonjour
    export GREETING

%apprun hello
    exec hello "$@"

%applabels hello
    Maintainer hpc-team

%runscript
    cat /opt/tool/VERSION

%test
    echo "kiln-test: final stage, $(cat /etc/post-marker)"
    test -x /scif/apps/hello/bin/hello
    touch /test-was-here
`

const HELLO = '#!/bin/sh\necho "$GREETING from $SCIF_APPNAME: $*"\n'

/** What `apptainer run --app hello` does before the app's runscript (95-apps.sh). */
const RUN_APP = '. /scif/apps/hello/scif/env/01-base.sh; . /scif/apps/hello/scif/env/90-environment.sh; PATH=/scif/apps/hello/bin:$PATH; exec /scif/apps/hello/scif/runscript "$@"'

const DRIVERS: Array<{ sandbox: 'auto' | 'proot', tools: string[] }> = [
  { sandbox: 'auto', tools: [] },
  { sandbox: 'proot', tools: ['proot'] }
]

function setup (): { u: Unprivileged, write: (dir: string, files: Record<string, string>, layout?: string) => string } {
  const u = makeUnprivileged()
  const write = (dir: string, files: Record<string, string>, layout = ''): string => {
    mkdirSync(dir, { recursive: true })
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text.replaceAll('LAYOUT', layout))
    u.give(dir)
    return dir
  }
  return { u, write }
}

describe.each(DRIVERS)('Apptainer SCIF apps and %test as an unprivileged user (sandbox $sandbox)', ({ sandbox, tools }) => {
  if (!haveTools('setpriv', 'umoci', 'busybox', 'unshare', ...tools)) { it.skip('needs the tools', () => {}); return }

  let u: Unprivileged
  let write: ReturnType<typeof setup>['write']
  let layout: string
  const env = { KILN_SANDBOX: sandbox }

  beforeAll(() => {
    ({ u, write } = setup())
    layout = makeBusyboxBase(u)
  }, 120_000)
  afterAll(() => { u?.cleanup() })

  it('builds apps under /scif, runs %appinstall in the app base and %test at the end, and the app runs', () => {
    const ctx = write(join(u.work, 'ctx-apps'), { 'Singularity.def': APPS, 'hello.sh': HELLO }, layout)
    const out = join(u.work, 'out-apps')
    const r = u.kiln(['build', '-t', 'e2e/apps:1', '--output', `oci-layout:${out}`, ctx], { env })
    expect(r.status, r.stderr).toBe(0)
    // Both stages' tests ran (their output is the build's), after everything else of the stage.
    expect(r.stderr).toContain('kiln-test: final stage, post ran')
    expect(r.stdout.match(/^\[\d+\/\d+\] %test: running \/\.singularity\.d\/test$/gm)).toHaveLength(2)
    mkdirSync(out, { recursive: true })

    const image = unpackAs(u, out, '1')
    const at = (p: string): string => join(image.rootfs, p)
    expect(readFileSync(at('scif/apps/hello/install.log'), 'utf8')).toBe('installed in /scif/apps/hello as hello\n')
    expect(statSync(at('scif/apps/hello/bin/hello')).mode & 0o111).not.toBe(0)
    expect(statSync(at('scif/data/hello/input')).isDirectory()).toBe(true)
    expect(statSync(at('scif/data/hello/output')).isDirectory()).toBe(true)
    expect(JSON.parse(readFileSync(at('scif/apps/hello/scif/labels.json'), 'utf8'))).toEqual({ Maintainer: 'hpc-team', SCIF_APP_NAME: 'hello' })
    expect(readFileSync(at('.singularity.d/env/94-appsbase.sh'), 'utf8')).toContain('export SCIF_APPRUN_hello="/scif/apps/hello/scif/runscript"')
    expect(readFileSync(at('.singularity.d/test'), 'utf8')).toContain('touch /test-was-here')
    // The checks changed nothing: not this stage's image, not what the final stage copied from the first.
    expect(existsSync(at('test-was-here'))).toBe(false)
    expect(readFileSync(at('opt/tool/VERSION'), 'utf8')).toBe('tool 1.0\n')
    expect(existsSync(at('opt/tool/test-marker'))).toBe(false)

    expect(runAs(u, image)).toBe('tool 1.0\n')
    expect(runAs(u, image, ['/bin/sh', '-c', RUN_APP, 'run', 'world'])).toBe('bonjour from hello: world\n')

    // A rebuild takes every step from the cache but the two checks, which run again, as %test runs on every Apptainer build.
    const again = u.kiln(['build', '--json', ctx], { env })
    expect(again.status, again.stderr).toBe(0)
    const rerun = JSON.parse(again.stdout) as { steps: number, cachedSteps: number, stepReports: Array<{ index: number, op: string, cached: boolean }> }
    expect(rerun.stepReports.filter(s => !s.cached).map(s => `${s.op}:${s.index}`)).toEqual(['run:3', 'run:11'])
    expect(rerun.cachedSteps).toBe(rerun.steps - 2)
  })

  it('fails the build when %test fails, naming its line, and --notest skips it', () => {
    const failing = APPS.replace('touch /test-was-here', 'exit 3')
    const ctx = write(join(u.work, 'ctx-fail'), { 'Singularity.def': failing, 'hello.sh': HELLO }, layout)
    const before = u.kiln(['image', 'ls', '--json']).stdout
    const r = u.kiln(['build', '-t', 'e2e/failing:1', ctx], { env })
    expect(r.status, r.stderr).toBe(5)
    expect(r.stderr).toMatch(/Singularity\.def:\d+: the check failed with exit code 3: %test: running \/\.singularity\.d\/test/)
    expect(u.kiln(['image', 'ls', '--json']).stdout).toBe(before)

    const skipped = u.kiln(['build', '--notest', '--json', '-t', 'e2e/failing:1', ctx], { env })
    expect(skipped.status, skipped.stderr).toBe(0)
    // Every other step came from the cache: the check is not keyed, so leaving it out changes no layer.
    const summary = JSON.parse(skipped.stdout) as { steps: number, cachedSteps: number }
    expect(summary.cachedSteps).toBe(summary.steps)
  })
})

describe('Bootstrap: debootstrap from deb.debian.org as an unprivileged user', () => {
  if (!haveTools('setpriv', 'umoci', 'unshare', 'mmdebstrap', 'fakechroot')) { it.skip('needs the tools', () => {}); return }

  let u: Unprivileged
  let write: ReturnType<typeof setup>['write']
  beforeAll(() => { ({ u, write } = setup()) })
  // Two Debian trees (the unpacked base and the bundle) and the store: removing them takes a while on a busy node.
  afterAll(() => { u?.cleanup() }, 300_000)

  it('bootstraps bookworm with an Include, runs %post and %test in it, and reuses the base on rebuild', () => {
    // ca-certificates' trigger (a hash link per certificate) takes minutes under fakechroot: busybox alone is the Include here.
    const def = readFileSync(join(import.meta.dirname, '../../fixtures/recipe/apptainer/debian-tools.def'), 'utf8').replace('Include: busybox ca-certificates', 'Include: busybox')
    expect(def).toMatch(/^Include: busybox$/m)
    const ctx = write(join(u.work, 'ctx-debian'), { 'Singularity.def': def })
    const out = join(u.work, 'out-debian')
    const t0 = performance.now()
    const r = u.kiln(['build', '--json', '-t', 'e2e/debian:12', '--output', `oci-layout:${out}`, ctx], { timeoutMs: 900_000 })
    expect(r.status, r.stderr).toBe(0)
    console.log(`debootstrap build (bookworm minbase + busybox) as uid ${u.uid}: ${Math.round((performance.now() - t0) / 1000)} s`)

    const image = unpackAs(u, out, '12')
    expect(readFileSync(join(image.rootfs, 'etc/debian_version'), 'utf8')).toMatch(/^12\./)
    expect(existsSync(join(image.rootfs, 'usr/bin/apt-get'))).toBe(true)
    expect(existsSync(join(image.rootfs, 'bin/busybox'))).toBe(true)
    expect(runAs(u, image)).toMatch(/^built on 12\.\d+\n$/)

    const refs = JSON.parse(u.kiln(['image', 'ls', '--json']).stdout) as Array<{ repository: string }>
    expect(refs.map(x => x.repository)).toContain('kiln-debootstrap/bookworm')
    const again = u.kiln(['build', '--json', ctx], { timeoutMs: 300_000 })
    expect(again.status, again.stderr).toBe(0)
    expect((JSON.parse(again.stdout) as { digest: string }).digest).toBe((JSON.parse(r.stdout) as { digest: string }).digest)
  }, 1_000_000)
})
