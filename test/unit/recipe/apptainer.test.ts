import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { normalizeDockerName, parseApptainer } from '../../../src/recipe/index.ts'
import type { BuildPlan, ParseOptions, Step } from '../../../src/recipe/index.ts'

const fixture = readFileSync(fileURLToPath(new URL('../../fixtures/recipe/two-stage.def', import.meta.url)), 'utf8')

function parse (text: string, options: ParseOptions = {}): BuildPlan {
  return parseApptainer(text, { filename: 'app.def', ...options })
}

function lastSteps (plan: BuildPlan): Step[] {
  return plan.stages.at(-1)?.steps ?? []
}

describe('Apptainer: a two-stage definition', () => {
  const plan = parse(fixture)

  it('maps each stage\'s Bootstrap/From to a base, with %arguments templated', () => {
    expect(plan.stages.map(s => [s.name, s.base])).toEqual([
      ['build', { kind: 'image', ref: 'docker://docker.io/library/golang:1.22' }],
      ['final', { kind: 'image', ref: 'oci:/images/base:1.0' }]
    ])
    expect(plan.args).toEqual({ BUILDER: 'golang:1.22', VERSION: '1.0' })
  })

  it('turns %files into cp-style copies at absolute paths, with their lines', () => {
    const copies = plan.stages[0]?.steps.filter(s => s.op === 'copy') ?? []
    expect(copies).toMatchObject([
      { sources: [{ kind: 'path', path: 'src/' }], dest: '/src', semantics: 'cp', from: { kind: 'context' }, source: { line: 11 } },
      { sources: [{ kind: 'path', path: 'README.md' }], dest: '/README.md', source: { line: 12 } }
    ])
    expect(lastSteps(plan)[0]).toMatchObject({ op: 'copy', from: { kind: 'stage', stage: 0 }, dest: '/usr/local/bin/tool' })
  })

  it('runs %post with its interpreter and the Apptainer variables, after %files', () => {
    const steps = plan.stages[0]?.steps ?? []
    expect(steps.map(s => s.op)).toEqual(['copy', 'copy', 'run'])
    expect(steps[2]).toMatchObject({
      shell: ['/bin/bash', '-c'],
      command: { form: 'shell', script: '    cd /src && go build -o /out/tool .\n' },
      env: { APPTAINER_ROOTFS: '/', SINGULARITY_ROOTFS: '/' },
      source: { line: 14 }
    })
  })

  it('writes %environment, %runscript, %test, %help and labels.json where Apptainer keeps them', () => {
    const files = lastSteps(plan).filter((s): s is Extract<Step, { op: 'file' }> => s.op === 'file')
    const byPath = new Map(files.map(f => [f.path, f]))
    expect(byPath.get('/.singularity.d/env/90-environment.sh')?.content).toContain('export TOOL_HOME=/opt/tool')
    expect(byPath.get('/.singularity.d/runscript')).toMatchObject({ mode: 0o755, content: expect.stringMatching(/^#!\/bin\/sh\n[\s\S]*exec tool "\$@"/) })
    expect(byPath.get('/.singularity.d/test')?.content).toContain('tool --version')
    expect(byPath.get('/.singularity.d/runscript.help')).toMatchObject({ mode: 0o644, content: expect.stringContaining('Runs the tool.') })
    expect(JSON.parse(byPath.get('/.singularity.d/labels.json')?.content ?? '{}')).toEqual({ Author: 'hpc-team', Version: '1.0' })
    expect(lastSteps(plan).find(s => s.op === 'label')).toMatchObject({ labels: [{ key: 'Author', value: 'hpc-team' }, { key: 'Version', value: '1.0' }] })
  })

  it('lets build args override %arguments', () => {
    const custom = parse(fixture, { buildArgs: { VERSION: '2.0', BUILDER: 'quay.io/me/go' } })
    expect(custom.stages.map(s => s.base)).toEqual([
      { kind: 'image', ref: 'docker://quay.io/me/go:latest' },
      { kind: 'image', ref: 'oci:/images/base:2.0' }
    ])
  })
})

describe('Apptainer: bases', () => {
  it.each([
    ['ubuntu', 'docker.io/library/ubuntu:latest'],
    ['ubuntu:22.04', 'docker.io/library/ubuntu:22.04'],
    ['me/app:1', 'docker.io/me/app:1'],
    ['ghcr.io/me/app', 'ghcr.io/me/app:latest'],
    ['localhost:5000/app@sha256:abc', 'localhost:5000/app@sha256:abc']
  ])('normalizes %s', (name, full) => {
    expect(normalizeDockerName(name)).toBe(full)
  })

  it.each([
    ['docker', 'docker://alpine', 'docker://docker.io/library/alpine:latest'],
    ['oci-archive', '/x/img.tar', 'oci-archive:/x/img.tar'],
    ['docker-archive', 'img.tar', 'docker-archive:img.tar'],
    ['localimage', '/images/layout', 'oci:/images/layout'],
    ['localimage', '/x/app.sif', 'sif:/x/app.sif'],
    ['oras', 'ghcr.io/org/app:1.2', 'oras://ghcr.io/org/app:1.2'],
    ['oras', 'oras://127.0.0.1:5000/sif/base', 'oras://127.0.0.1:5000/sif/base:latest'],
    ['library', 'library://alpine:3.19', 'library://alpine:3.19'],
    ['library', 'sylabs/examples/lolcow', 'library://sylabs/examples/lolcow']
  ])('Bootstrap: %s', (agent, from, ref) => {
    expect(parse(`Bootstrap: ${agent}\nFrom: ${from}\n`).stages[0]?.base).toEqual({ kind: 'image', ref })
  })

  it('accepts scratch without From', () => {
    expect(parse('Bootstrap: scratch\n%files\nbin/tool /tool\n').stages[0]?.base).toEqual({ kind: 'scratch' })
  })

  it('reads a localimage SIF as sif:, refuses sandboxes and what is neither SIF nor layout', () => {
    expect(parse('Bootstrap: localimage\nFrom: /x/app\n', { localImageKind: () => 'sif' }).stages[0]?.base).toEqual({ kind: 'image', ref: 'sif:/x/app' })
    expect(() => parse('Bootstrap: localimage\nFrom: /x/sandbox\n', { localImageKind: () => 'sandbox' })).toThrow(/sandbox/)
    expect(() => parse('Bootstrap: localimage\nFrom: /x/file\n', { localImageKind: () => 'other' })).toThrow(expect.objectContaining({ name: 'UnsupportedFeatureError', message: expect.stringContaining('neither a SIF') }))
    expect(parse('Bootstrap: localimage\nFrom: /x/odd.img\n', { localImageKind: () => 'oci-layout' }).stages[0]?.base).toEqual({ kind: 'image', ref: 'oci:/x/odd.img' })
  })

  it('refuses Bootstrap: shub, saying the service is retired', () => {
    expect(() => parse('Bootstrap: shub\nFrom: vsoch/hello-world\n')).toThrow(expect.objectContaining({ name: 'UnsupportedFeatureError', hint: expect.stringContaining('Singularity Hub is retired') }))
  })

  it.each(['shub', 'yum', 'zypper', 'arch'])('refuses Bootstrap: %s, naming it', (agent) => {
    expect(() => parse(`# c\nBootstrap: ${agent}\nFrom: x\n`)).toThrow(expect.objectContaining({ name: 'UnsupportedFeatureError', line: 2, message: expect.stringContaining(`Bootstrap: ${agent}`) }))
  })

  it('refuses unknown headers, naming them', () => {
    expect(() => parse('Bootstrap: docker\nFrom: a\nIncludeCmd: yes\n')).toThrow(expect.objectContaining({ name: 'UnsupportedFeatureError', line: 3, message: expect.stringContaining('includecmd') }))
  })
})

describe('Apptainer: %setup', () => {
  const text = 'Bootstrap: docker\nFrom: alpine\n%files\n  a /a\n%setup\n  touch ${APPTAINER_ROOTFS}/marker\n%post\n  ls /marker\n'

  it('runs %setup inside the sandbox, before %files and %post, with the rootfs at /', () => {
    const steps = parse(text).stages[0]?.steps ?? []
    expect(steps.map(s => s.op)).toEqual(['run', 'copy', 'run'])
    expect(steps[0]).toMatchObject({ command: { script: '  touch ${APPTAINER_ROOTFS}/marker\n' }, env: { APPTAINER_ROOTFS: '/', SINGULARITY_ROOTFS: '/' }, source: { line: 5 } })
  })
})

describe('Apptainer: errors', () => {
  it.each([
    ['no Bootstrap', 'From: alpine\n', 'MissingBaseError', 1],
    ['section before Bootstrap', '%post\necho\n', 'MissingBaseError', 1],
    ['From missing', 'Bootstrap: docker\n%post\ntrue\n', 'RecipeSyntaxError', 1],
    ['undefined template', 'Bootstrap: docker\nFrom: alpine\n%post\necho {{ NOPE }}\n', 'UndefinedVariableError', 4],
    ['unknown %files stage', 'Bootstrap: docker\nFrom: a\n%files from nope\n/a /b\n', 'UnknownStageError', 3],
    ['bad %files line', 'Bootstrap: docker\nFrom: a\n%files\na b c\n', 'RecipeSyntaxError', 4],
    ['bad %post args', 'Bootstrap: docker\nFrom: a\n%post --weird\ntrue\n', 'RecipeSyntaxError', 3],
    ['app section without a name', 'Bootstrap: docker\nFrom: a\n%apprun\nexec foo\n', 'RecipeSyntaxError', 3],
    ['app name with a slash', 'Bootstrap: docker\nFrom: a\n%appinstall ../x\ntrue\n', 'RecipeSyntaxError', 3],
    ['header garbage', 'Bootstrap: docker\nnonsense here\n', 'RecipeSyntaxError', 2],
    ['duplicate header', 'Bootstrap: docker\nFrom: a\nFrom: b\n', 'RecipeSyntaxError', 3]
  ])('%s', (_, text, name, line) => {
    expect(() => parse(text)).toThrow(expect.objectContaining({ name, line, file: 'app.def' }))
  })

  it('keeps unknown %words inside a script body as script text', () => {
    const steps = parse('Bootstrap: docker\nFrom: a\n%post\nprintf "%s\\n" x\n%zzzzzzzz\n').stages[0]?.steps
    expect(steps?.[0]).toMatchObject({ command: { script: 'printf "%s\\n" x\n%zzzzzzzz\n' } })
  })
})
