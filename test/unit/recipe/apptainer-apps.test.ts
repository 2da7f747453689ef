/**
 * The Apptainer front end over real definitions (test/fixtures/recipe/apptainer:
 * Apptainer's own examples and two of ours): SCIF apps laid out as
 * Apptainer lays them out, %test as a check at the end, %setup in the
 * sandbox, Bootstrap: debootstrap as a base, other bootstraps refused with
 * what to use instead. The layout step's script is run here with /bin/sh in
 * a temp dir standing for `/`, and the files it writes are read back.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parseApptainer } from '../../../src/recipe/index.ts'
import type { BuildPlan, ParseOptions, RunStep, Step } from '../../../src/recipe/index.ts'

const fixture = (name: string): string => readFileSync(join(import.meta.dirname, '../../fixtures/recipe/apptainer', name), 'utf8')
const parse = (name: string, options: ParseOptions = {}): BuildPlan => parseApptainer(fixture(name), { filename: name, ...options })
const stepsOf = (plan: BuildPlan): Step[] => plan.stages.at(-1)?.steps ?? []
const runs = (steps: readonly Step[]): RunStep[] => steps.filter((s): s is RunStep => s.op === 'run')

/** Runs a layout step's script with every absolute path moved under `root`. */
function runLayout (step: RunStep, root: string): void {
  if (step.command.form !== 'shell') throw new Error('not a shell step')
  const script = step.command.script.replaceAll(' /', ` ${root}/`)
  execFileSync('/bin/sh', ['-e', '-c', script])
}

describe('SCIF apps: scif-tools.def (two apps, every app section)', () => {
  const plan = parse('scif-tools.def')
  const steps = stepsOf(plan)
  const root = mkdtempSync(join(tmpdir(), 'kiln-scif-'))
  afterAll(() => { rmSync(root, { recursive: true, force: true }) })

  it('lays out the apps first, then the %appfiles copies, then the image sections', () => {
    expect(steps.map(s => `${s.op}:${s.source.line}`)).toEqual([
      'run:23', 'copy:24', 'copy:25', 'copy:7', 'file:13', 'file:16', 'file:19', 'run:9', 'run:27', 'run:48', 'run:19'
    ])
  })

  it('writes /scif as Apptainer does: dirs, 01-base.sh, env, labels, runscript, startscript, test, help', () => {
    const layout = runs(steps)[0]
    if (layout === undefined) throw new Error('no layout step')
    runLayout(layout, root)
    for (const dir of ['scif/apps/convert/bin', 'scif/apps/convert/lib', 'scif/data/convert/input', 'scif/data/convert/output', 'scif/apps/report-gen/bin', 'scif/data/report-gen/output']) {
      expect(statSync(join(root, dir)).isDirectory(), dir).toBe(true)
    }
    const read = (p: string): string => readFileSync(join(root, p), 'utf8')
    const mode = (p: string): number => statSync(join(root, p)).mode & 0o777
    expect(read('scif/apps/convert/scif/env/01-base.sh')).toContain('SCIF_APPNAME=convert\nSCIF_APPROOT="/scif/apps/convert"\n')
    expect(read('scif/apps/convert/scif/env/01-base.sh')).toContain('SCIF_APPINPUT="/scif/data/convert/input"')
    expect(read('scif/apps/convert/scif/env/90-environment.sh')).toBe('    CONVERT_MODE=fast\n    export CONVERT_MODE\n')
    expect(read('scif/apps/convert/scif/runscript')).toBe('#!/bin/sh\n\n    exec convert "$@"\n')
    expect(mode('scif/apps/convert/scif/runscript')).toBe(0o755)
    expect(read('scif/apps/convert/scif/test')).toBe('#!/bin/sh\n\n    convert --self-test\n')
    expect(read('scif/apps/convert/scif/runscript.help')).toContain('Converts tables.')
    expect(mode('scif/apps/convert/scif/runscript.help')).toBe(0o644)
    expect(JSON.parse(read('scif/apps/convert/scif/labels.json'))).toEqual({ Maintainer: 'hpc-team', SCIF_APP_NAME: 'convert', Version: '2.1' })
    expect(read('scif/apps/report-gen/scif/startscript')).toBe('#!/bin/sh\n\n    exec report-server --port 8080\n')
    expect(() => statSync(join(root, 'scif/apps/report-gen/scif/env/90-environment.sh'))).toThrow()
    const base = read('.singularity.d/env/94-appsbase.sh')
    expect(base).toContain('SCIF_APPROOT_convert=/scif/apps/convert\n')
    expect(base).toContain('export SCIF_APPENV_convert="/scif/apps/convert/scif/env/90-environment.sh"\n')
    // A name with '-' becomes '_' in variable names, as Apptainer writes them.
    expect(base).toContain('SCIF_APPBIN_report_gen=/scif/apps/report-gen/bin\n')
    expect(base).toContain('export SCIF_APPSTART_report_gen="/scif/apps/report-gen/scif/startscript"\n')
    expect(base).not.toContain('SCIF_APPENV_report_gen')
  })

  it('sources the 94-appsbase.sh it writes without error', () => {
    const out = execFileSync('/bin/sh', ['-c', `. ${join(root, '.singularity.d/env/94-appsbase.sh')}; echo "$SCIF_APPRUN_convert $SCIF_APPDATA_report_gen"`], { encoding: 'utf8' })
    expect(out).toBe('/scif/apps/convert/scif/runscript /scif/data/report-gen\n')
  })

  it('copies %appfiles into the app base with cp rules', () => {
    expect(steps.filter(s => s.op === 'copy').slice(0, 2)).toMatchObject([
      { sources: [{ path: 'scripts/convert.sh' }], dest: '/scif/apps/convert/bin/convert', semantics: 'cp', from: { kind: 'context' } },
      { sources: [{ path: 'data/table.csv' }], dest: '/scif/apps/convert/data/table.csv' }
    ])
  })

  it('runs each %appinstall after %post, in the app base with 01-base.sh sourced, in %post\'s shell', () => {
    const [, post, convert, report] = runs(steps)
    expect(post?.command).toMatchObject({ script: expect.stringContaining('/opt/shared/VERSION') })
    expect(convert).toMatchObject({ shell: ['/bin/sh', '-e', '-x', '-c'], env: { APPTAINER_ROOTFS: '/' } })
    expect(convert?.command).toMatchObject({ script: expect.stringMatching(/^\ncd \/\n\. \/scif\/apps\/convert\/scif\/env\/01-base\.sh\n\ncd \/scif\/apps\/convert\n {4}chmod 755 bin\/convert\n/) })
    expect(report?.command).toMatchObject({ script: expect.stringContaining('cd /scif/apps/report-gen\n') })
  })

  it('runs %test last, as a check of the stage, sourcing the environment as apptainer test does', () => {
    const check = steps.at(-1)
    expect(check).toMatchObject({ op: 'run', check: true, source: { line: 19 } })
    expect(check?.op === 'run' && check.command.form === 'shell' ? check.command.script : '').toMatch(/\/\.singularity\.d\/env\/\*\.sh.*exec \/\.singularity\.d\/test$/)
    expect(steps.filter(s => s.op === 'run' && s.check === true)).toHaveLength(1)
  })

  it('leaves %test out with skipTest (kiln build --notest), and the file still written', () => {
    const skipped = stepsOf(parse('scif-tools.def', { skipTest: true }))
    expect(skipped.some(s => s.op === 'run' && s.check === true)).toBe(false)
    expect(skipped.some(s => s.op === 'file' && s.path === '/.singularity.d/test')).toBe(true)
    expect(skipped).toHaveLength(steps.length - 1)
  })
})

describe('SCIF apps: Apptainer\'s examples', () => {
  it('apps-cowsay.def: three apps, installs in app order after %post', () => {
    const steps = stepsOf(parse('apps-cowsay.def'))
    const installs = runs(steps).filter(r => r.command.form === 'shell' && r.command.script.includes('/scif/apps/'))
    expect(installs.map(r => /# SCIF apps: (.*)/.exec(r.command.form === 'shell' ? r.command.script : '')?.[1] ?? /cd \/scif\/apps\/(\w+)/.exec(r.command.form === 'shell' ? r.command.script : '')?.[1])).toEqual([
      'fortune cowsay lolcat', 'fortune', 'cowsay', 'lolcat'
    ])
    expect(steps.findIndex(s => s.op === 'run' && s.command.form === 'shell' && s.command.script.includes('apt-get -y update'))).toBe(2)
  })

  it('apps-setup.def: %setup and apps together; an app without %appinstall gets no install step', () => {
    const steps = stepsOf(parse('apps-setup.def'))
    expect(runs(steps).map(r => (r.command.form === 'shell' ? r.command.script.trim().split('\n')[0] : ''))).toEqual([
      '# SCIF apps: foo bar', 'echo "SETUP"', 'echo "POST"', 'cd /', 'cd /'
    ])
  })

  it('joins two sections of the same kind for one app, as Apptainer does', () => {
    const plan = parseApptainer('Bootstrap: docker\nFrom: a\n%apprun x\necho one\n%apprun x\necho two\n', { filename: 'j.def' })
    const layout = runs(stepsOf(plan))[0]
    expect(layout?.command.form === 'shell' ? layout.command.script : '').toContain("printf '%s' '#!/bin/sh\n\necho one\necho two\n' > /scif/apps/x/scif/runscript")
  })
})

describe('Bootstrap: debootstrap', () => {
  it('debian-tools.def: OSVersion, MirrorURL and Include become the base', () => {
    const plan = parse('debian-tools.def')
    expect(plan.stages[0]?.base).toEqual({ kind: 'debootstrap', suite: 'bookworm', mirror: 'http://deb.debian.org/debian', include: ['busybox', 'ca-certificates'] })
    expect(stepsOf(plan).at(-1)).toMatchObject({ op: 'run', check: true })
  })

  it.each([
    ['debian-stable.def', { suite: 'stable', mirror: 'http://ftp.us.debian.org/debian', include: [] }],
    ['ubuntu-debootstrap.def', { suite: 'jammy', mirror: 'http://us.archive.ubuntu.com/ubuntu', include: [] }]
  ])('%s (Apptainer example, headers in any case)', (name, base) => {
    expect(parse(name).stages[0]?.base).toEqual({ kind: 'debootstrap', ...base })
  })

  it.each([
    ['no OSVersion', 'MirrorURL: http://deb.debian.org/debian\n', 1, 'OSVersion'],
    ['no MirrorURL', 'OSVersion: bookworm\n', 1, 'MirrorURL'],
    ['a file URL', 'OSVersion: bookworm\nMirrorURL: file:///srv/mirror\n', 3, 'http(s)'],
    ['an apt option in the mirror', 'OSVersion: bookworm\nMirrorURL: [trusted=yes] http://evil.example/debian\n', 3, 'http(s)'],
    ['a .deb path in Include', 'OSVersion: bookworm\nMirrorURL: http://deb.debian.org/debian\nInclude: /home/me/x.deb\n', 4, 'package name'],
    ['an apt pattern in Include', 'OSVersion: bookworm\nMirrorURL: http://deb.debian.org/debian\nInclude: ?essential\n', 4, 'package name'],
    ['an option as suite', 'OSVersion: --hook-dir=/x\nMirrorURL: http://deb.debian.org/debian\n', 2, 'suite']
  ])('refuses %s, naming the header', (_, headers, line, what) => {
    expect(() => parseApptainer(`Bootstrap: debootstrap\n${headers}`, { filename: 'd.def' })).toThrow(expect.objectContaining({ name: 'RecipeSyntaxError', line, message: expect.stringContaining(what) }))
  })

  it('refuses debootstrap headers on other bootstraps', () => {
    expect(() => parseApptainer('Bootstrap: docker\nFrom: debian\nOSVersion: bookworm\n', { filename: 'd.def' })).toThrow(expect.objectContaining({ name: 'UnsupportedFeatureError', line: 3 }))
  })

  it('refuses Bootstrap: yum (rocky-yum.def) saying which image to start from', () => {
    expect(() => parse('rocky-yum.def')).toThrow(expect.objectContaining({ name: 'UnsupportedFeatureError', line: 2, hint: expect.stringContaining('From: rockylinux:9') }))
  })
})
