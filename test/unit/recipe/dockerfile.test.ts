import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { parseDockerfile } from '../../../src/recipe/index.ts'
import type { BuildPlan, ParseOptions, Step } from '../../../src/recipe/index.ts'

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))

function parse (text: string, options: ParseOptions = {}): BuildPlan {
  return parseDockerfile(text, options)
}

/** Steps of the target stage. */
function targetSteps (text: string, options: ParseOptions = {}): Step[] {
  const plan = parse(text, options)
  return plan.stages.find(s => s.index === plan.target)?.steps ?? []
}

function only<O extends Step['op']> (text: string, op: O, options: ParseOptions = {}): Extract<Step, { op: O }> {
  const found = targetSteps(text, options).filter((s): s is Extract<Step, { op: O }> => s.op === op)
  expect(found).toHaveLength(1)
  return found[0] as Extract<Step, { op: O }>
}

describe('Dockerfile: the reference recipe', () => {
  it('parses with BASE overridden and keeps every instruction in order', () => {
    const text = readFileSync(`${repoRoot}../shared/bench/Dockerfile.reference`, 'utf8')
    const plan = parse(text, { buildArgs: { BASE: 'oci:/x:base' } })
    expect(plan.args).toEqual({ BASE: 'oci:/x:base' })
    expect(plan.stages).toHaveLength(1)
    const stage = plan.stages[0]
    expect(stage?.base).toEqual({ kind: 'image', ref: 'oci:/x:base' })
    expect(stage?.steps.map(s => s.op)).toEqual(['run', 'copy', 'run', 'env', 'workdir', 'run', 'cmd'])
    const lines = text.split('\n')
    for (const step of stage?.steps ?? []) {
      expect(lines[step.source.line - 1]).toMatch(new RegExp(`^${step.op}`, 'i'))
    }
    expect(stage?.steps[3]).toMatchObject({ vars: [{ key: 'APP_HOME', value: '/data' }, { key: 'PATH', value: '/usr/local/bin:/usr/bin:/bin' }] })
    expect(stage?.steps[6]).toMatchObject({ argv: ['cat', '/data/payload.sha256'], form: 'exec' })
    const defaulted = parse(text)
    expect(defaulted.stages[0]?.base).toEqual({ kind: 'image', ref: 'localhost/kiln-bench/busybox:base' })
  })
})

describe('Dockerfile: a multi-stage fixture', () => {
  const text = readFileSync(`${repoRoot}test/fixtures/recipe/multi-stage.Dockerfile`, 'utf8')

  it('substitutes global args in FROM, prunes the unused stage, resolves platforms', () => {
    const plan = parse(text, { platform: 'linux/arm64', buildPlatform: 'linux/amd64' })
    expect(plan.stages.map(s => s.index)).toEqual([0, 2])
    expect(plan.target).toBe(2)
    expect(plan.stages[0]).toMatchObject({ name: 'build', platform: 'linux/amd64', base: { kind: 'image', ref: 'golang:1.22-alpine' } })
    expect(plan.stages[1]?.base).toEqual({ kind: 'image', ref: 'alpine:3.19' })
    const run = plan.stages[0]?.steps.find(s => s.op === 'run')
    expect(run).toMatchObject({ env: { TARGETARCH: 'arm64', GO_VERSION: '1.22' }, command: { form: 'shell', script: 'GOARCH=$TARGETARCH go build -o /out/app .' } })
    expect(plan.stages[1]?.steps[0]).toMatchObject({ op: 'copy', from: { kind: 'stage', stage: 0 }, chown: 'app:app', chmod: '0755' })
  })

  it('lets build args override ARG defaults', () => {
    const plan = parse(text, { buildArgs: { GO_VERSION: '1.23', BASE_OS: 'debian' } })
    expect(plan.stages[0]?.base).toEqual({ kind: 'image', ref: 'golang:1.23-debian' })
    expect(plan.stages[0]?.steps.find(s => s.op === 'run')).toMatchObject({ env: { GO_VERSION: '1.23' } })
    expect(plan.args).toEqual({ GO_VERSION: '1.23', BASE_OS: 'debian' })
  })
})

describe('Dockerfile: lines', () => {
  it('joins continuations, skipping comments and blank lines inside them', () => {
    const run = only('FROM a\nRUN echo one \\\n# comment\n\n  && echo two\n', 'run')
    expect(run.command).toEqual({ form: 'shell', script: 'echo one   && echo two' })
    expect(run.source.line).toBe(2)
  })

  it('uses the escape directive, backtick included', () => {
    const plan = parse('# escape=`\nFROM a\nRUN dir C:\\ `\n  /w\nCOPY a\\b c:\\d\n')
    const steps = plan.stages[0]?.steps ?? []
    expect(steps[0]).toMatchObject({ command: { form: 'shell', script: 'dir C:\\   /w' } })
    expect(steps[1]).toMatchObject({ sources: [{ path: 'a\\b' }], dest: 'c:\\d' })
  })

  it('stops reading directives after the first other line', () => {
    expect(() => parse('# escape=x\nFROM a\n')).toThrow(expect.objectContaining({ name: 'RecipeSyntaxError', line: 1 }))
    const late = parse('FROM a\n# escape=`\nRUN a \\\n b\n')
    expect(late.stages[0]?.steps[0]).toMatchObject({ command: { script: 'a  b' } })
  })

  it('reads instructions case-insensitively and tracks columns', () => {
    const run = only('from a\n   rUn true\n', 'run')
    expect(run.source).toEqual({ file: 'Dockerfile', line: 2, column: 4 })
  })
})

describe('Dockerfile: heredocs', () => {
  it('turns a lone heredoc into the script', () => {
    expect(only('FROM a\nRUN <<EOF\necho $HOME\nset -e\nEOF\n', 'run').command).toEqual({ form: 'shell', script: 'echo $HOME\nset -e\n' })
  })

  it('runs a heredoc with a shebang as a program', () => {
    expect(only('FROM a\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n', 'run').command).toEqual({ form: 'shebang', content: '#!/usr/bin/env python3\nprint(1)\n' })
  })

  it('strips tabs with <<-, feeds several heredocs to one command, and resumes after them', () => {
    const steps = targetSteps('FROM a\nRUN <<-A cat > /a && <<B cat > /b\n\t\tone\n\tA\n two\nB\nRUN true\n')
    expect(steps.map(s => s.op)).toEqual(['run', 'run'])
    expect(steps[0]).toMatchObject({ command: { form: 'shell', script: '<<-A cat > /a && <<B cat > /b\none\nA\n two\nB\n' } })
    expect(steps[1]?.source.line).toBe(7)
  })

  it('makes COPY heredocs inline files, expanded unless the delimiter is quoted', () => {
    const text = 'FROM a\nARG WHO=world\nCOPY <<one <<"two" /etc/\nhello $WHO\none\nhello $WHO\ntwo\n'
    const copy = only(text, 'copy')
    expect(copy.sources).toEqual([
      { kind: 'inline', name: 'one', content: 'hello world\n' },
      { kind: 'inline', name: 'two', content: 'hello $WHO\n' }
    ])
    expect(copy.dest).toBe('/etc/')
  })

  it('names the start line of an unterminated heredoc', () => {
    expect(() => parse('FROM a\nRUN true\nRUN <<EOF\necho\nEOFX\n')).toThrow(expect.objectContaining({ name: 'UnterminatedHeredocError', line: 3, message: expect.stringContaining('EOF') }))
  })

  it('does not read heredocs outside RUN/COPY/ADD', () => {
    expect(only('FROM a\nLABEL x=<<EOF\n', 'label').labels).toEqual([{ key: 'x', value: '<<EOF' }])
  })
})

describe('Dockerfile: forms and substitution scope', () => {
  it('tells exec from shell form and wraps shell forms in SHELL', () => {
    const steps = targetSteps('FROM a\nSHELL ["/bin/bash", "-o", "pipefail", "-c"]\nRUN ["echo", "$X"]\nCMD echo $X\nENTRYPOINT [not json\n')
    expect(steps[1]).toMatchObject({ command: { form: 'exec', argv: ['echo', '$X'] }, shell: ['/bin/bash', '-o', 'pipefail', '-c'] })
    expect(steps[2]).toMatchObject({ op: 'cmd', form: 'shell', argv: ['/bin/bash', '-o', 'pipefail', '-c', 'echo $X'] })
    expect(steps[3]).toMatchObject({ op: 'entrypoint', form: 'shell', argv: ['/bin/bash', '-o', 'pipefail', '-c', '[not json'] })
  })

  it('substitutes ENV and ARG in ADD COPY ENV EXPOSE LABEL STOPSIGNAL USER VOLUME WORKDIR but not in RUN', () => {
    const steps = targetSteps([
      'FROM a', 'ARG D=/srv', 'ENV PORT=8080 U=svc', 'WORKDIR ${D}/app', 'COPY $D/x ${D:-/y}/', 'EXPOSE $PORT/tcp',
      'LABEL dir=$D', 'STOPSIGNAL SIG${U:+TERM}', 'USER $U', 'VOLUME $D/data', 'RUN echo $D'
    ].join('\n'))
    expect(steps.map(s => s.op)).toEqual(['arg', 'env', 'workdir', 'copy', 'expose', 'label', 'stopsignal', 'user', 'volume', 'run'])
    expect(steps[2]).toMatchObject({ path: '/srv/app' })
    expect(steps[3]).toMatchObject({ sources: [{ path: '/srv/x' }], dest: '/srv/' })
    expect(steps[4]).toMatchObject({ ports: ['8080/tcp'] })
    expect(steps[5]).toMatchObject({ labels: [{ key: 'dir', value: '/srv' }] })
    expect(steps[6]).toMatchObject({ signal: 'SIGTERM' })
    expect(steps[7]).toMatchObject({ user: 'svc' })
    expect(steps[8]).toMatchObject({ paths: ['/srv/data'] })
    expect(steps[9]).toMatchObject({ command: { script: 'echo $D' }, env: { D: '/srv' } })
  })

  it('expands ENV pairs against the environment before the instruction', () => {
    const env = targetSteps('FROM a\nENV A=1\nENV A=2 B=$A C="x y" D=\'$A\'\nENV E  spaced value\n').filter(s => s.op === 'env')
    expect(env[1]).toMatchObject({ vars: [{ key: 'A', value: '2' }, { key: 'B', value: '1' }, { key: 'C', value: 'x y' }, { key: 'D', value: '$A' }] })
    expect(env[2]).toMatchObject({ vars: [{ key: 'E', value: 'spaced value' }] })
  })

  it('sees the base environment when the caller gives it, and a parent stage\'s ENV', () => {
    const text = 'FROM img AS one\nENV PATH=/opt/bin:$PATH\nFROM one\nENV P2=$PATH\n'
    const plan = parse(text, { baseEnv: ref => (ref === 'img' ? { PATH: '/usr/bin' } : undefined) })
    expect(plan.stages[1]?.steps[0]).toMatchObject({ vars: [{ key: 'P2', value: '/opt/bin:/usr/bin' }] })
  })

  it('expands $PATH against the default PATH when the base sets none (scratch, an unknown base), as BuildKit does', () => {
    const path = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    for (const from of ['scratch', 'img']) {
      expect(only(`FROM ${from}\nENV PATH=/opt/venv/bin:$PATH\n`, 'env').vars).toEqual([{ key: 'PATH', value: `/opt/venv/bin:${path}` }])
    }
    const plan = parse('FROM img\nENV PATH=/x:$PATH HOME2=$HOME\n', { baseEnv: () => ({ HOME: '/root' }) })
    expect(plan.stages[0]?.steps[0]).toMatchObject({ vars: [{ key: 'PATH', value: `/x:${path}` }, { key: 'HOME2', value: '/root' }] })
  })

  it('lets ENV win over ARG and keeps the shadowed ARG out of RUN env', () => {
    const run = only('FROM a\nARG X=arg\nENV X=env\nRUN true\n', 'run')
    expect(run.env).toEqual({})
  })

  it('gives a stage ARG without default the global value, and scopes ARGs to their stage', () => {
    const plan = parse('ARG V=1\nFROM a AS one\nARG V\nRUN x\nFROM a\nRUN y\nCOPY --from=one /a /a\n')
    expect(plan.stages[0]?.steps[1]).toMatchObject({ env: { V: '1' } })
    expect(plan.stages[1]?.steps[0]).toMatchObject({ env: {} })
  })

  it('turns MAINTAINER into a label', () => {
    expect(only('FROM a\nMAINTAINER Jane <j@x.org>\n', 'label').labels).toEqual([{ key: 'maintainer', value: 'Jane <j@x.org>' }])
  })

  it('parses HEALTHCHECK options and forms', () => {
    expect(only('FROM a\nHEALTHCHECK --interval=30s --retries=3 CMD curl -f http://x/\n', 'healthcheck'))
      .toMatchObject({ test: ['CMD-SHELL', 'curl -f http://x/'], interval: '30s', retries: 3 })
    expect(only('FROM a\nHEALTHCHECK NONE\n', 'healthcheck').test).toEqual(['NONE'])
    expect(() => parse('FROM a\nHEALTHCHECK --interval=soon CMD x\n')).toThrow(/invalid duration/)
  })
})

describe('Dockerfile: COPY, ADD and RUN flags', () => {
  it('reads --from by name, index and image; --link', () => {
    const plan = parse('FROM a AS b\nFROM a\nCOPY --from=B /x /x\nCOPY --from=0 /y /y\nCOPY --link --from=docker.io/library/busybox:1 /bin/sh /sh\n')
    const steps = plan.stages[1]?.steps ?? []
    expect(steps[0]).toMatchObject({ from: { kind: 'stage', stage: 0 } })
    expect(steps[1]).toMatchObject({ from: { kind: 'stage', stage: 0 } })
    expect(steps[2]).toMatchObject({ from: { kind: 'image', ref: 'docker.io/library/busybox:1' }, link: true })
  })

  it('rejects unknown stages in --from with the line', () => {
    expect(() => parse('FROM a AS b\nFROM a\nCOPY --from=bulid /x /x\n')).toThrow(expect.objectContaining({ name: 'UnknownStageError', line: 3, hint: expect.stringContaining('b') }))
    expect(() => parse('FROM a\nCOPY --from=1 /x /x\n')).toThrow(expect.objectContaining({ name: 'UnknownStageError', line: 2 }))
    expect(() => parse('FROM a AS self\nCOPY --from=self /x /x\n')).toThrow(expect.objectContaining({ name: 'UnknownStageError' }))
  })

  it('marks ADD and refuses remote sources for COPY', () => {
    expect(only('FROM a\nADD --chmod=644 a.tar /opt/\n', 'copy')).toMatchObject({ add: true, chmod: '644' })
    expect(() => parse('FROM a\nCOPY https://x.org/f /f\n')).toThrow(expect.objectContaining({ name: 'UnsupportedFeatureError', line: 2 }))
  })

  it('validates --chmod and requires two arguments', () => {
    expect(() => parse('FROM a\nCOPY --chmod=rwx a b\n')).toThrow(/--chmod/)
    expect(() => parse('FROM a\nCOPY a\n')).toThrow(expect.objectContaining({ name: 'RecipeSyntaxError', line: 2 }))
  })

  it('accepts the JSON form of COPY', () => {
    expect(only('FROM a\nCOPY ["a b", "/c d/"]\n', 'copy')).toMatchObject({ sources: [{ path: 'a b' }], dest: '/c d/' })
  })

  it('reads RUN --network and refuses --mount=type=ssh and --security up front, naming them', () => {
    expect(only('FROM a\nRUN --network=none make\n', 'run')).toMatchObject({ network: 'none', command: { script: 'make' } })
    expect(only('FROM a\nRUN --network=default make\n', 'run').network).toBe('default')
    expect(only('FROM a\nRUN make\n', 'run').network).toBeUndefined()
    expect(() => parse('FROM a\nRUN true\nRUN --mount=type=ssh make\n'))
      .toThrow(expect.objectContaining({ name: 'UnsupportedFeatureError', line: 3, message: expect.stringContaining('type=ssh') }))
    expect(() => parse('FROM a\nRUN --security=insecure make\n')).toThrow(expect.objectContaining({ name: 'UnsupportedFeatureError', message: expect.stringContaining('--security') }))
    expect(only('FROM a\nRUN --network=host make\n', 'run').network).toBe('default')
    expect(() => parse('FROM a\nRUN --network=bridge make\n')).toThrow(expect.objectContaining({ name: 'RecipeSyntaxError', line: 2, message: expect.stringMatching(/network mode 'bridge'.*--network=none, --network=default or --network=host/) }))
    expect(() => parse('FROM a\nRUN --frobnicate make\n')).toThrow(/unknown flag: --frobnicate/)
  })
})

describe('Dockerfile: errors', () => {
  it.each([
    ['empty', '', 'EmptyRecipeError', 1],
    ['comments only', '# hi\n\n', 'EmptyRecipeError', 1],
    ['no FROM', 'ARG A=1\nARG B=2\n', 'MissingBaseError', 2],
    ['instruction before FROM', 'ARG A\nRUN true\nFROM a\n', 'MissingBaseError', 2],
    ['unknown instruction', 'FROM a\nRUNN true\n', 'UnknownInstructionError', 2],
    ['ONBUILD ONBUILD', 'FROM a\nONBUILD ONBUILD RUN true\n', 'RecipeSyntaxError', 2],
    ['blank FROM', 'ARG BASE\nFROM $BASE\n', 'RecipeSyntaxError', 2],
    ['bad FROM arity', 'FROM a b\n', 'RecipeSyntaxError', 1],
    ['bad stage name', 'FROM a AS 1x\n', 'RecipeSyntaxError', 1],
    ['duplicate stage', 'FROM a AS x\nFROM a AS x\n', 'RecipeSyntaxError', 2],
    ['SHELL not JSON', 'FROM a\nSHELL /bin/bash -c\n', 'RecipeSyntaxError', 2],
    ['bad port', 'FROM a\nEXPOSE http\n', 'RecipeSyntaxError', 2],
    ['required var', 'FROM a\nWORKDIR ${DIR:?set DIR}\n', 'UndefinedVariableError', 2],
    ['unterminated quote', 'FROM a\nENV A="x\n', 'RecipeSyntaxError', 2],
    ['ENV without value', 'FROM a\nENV A\n', 'RecipeSyntaxError', 2]
  ])('%s', (_, text, name, line) => {
    expect(() => parse(text, { filename: 'x/Dockerfile' })).toThrow(expect.objectContaining({ name, line, file: 'x/Dockerfile' }))
  })

  it('suggests the nearest instruction and puts location first in the message', () => {
    expect(() => parse('FROM a\nRUNN true\n')).toThrow(expect.objectContaining({ hint: 'did you mean RUN?', message: expect.stringMatching(/^Dockerfile:2:1: unknown instruction: RUNN/) }))
    expect(() => parse('FROM a\nCOPPY a b\n')).toThrow(expect.objectContaining({ hint: 'did you mean COPY?' }))
  })
})
