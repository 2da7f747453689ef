/**
 * The Dockerfile front end's remote and filtered sources: ADD <url>
 * (--checksum), ADD <git> (BuildKit's URL#ref:subdir, --keep-git-dir), COPY
 * --parents and --exclude, and ONBUILD (recorded; triggers read back by
 * parseOnBuildTriggers with errors at the trigger and base).
 */
import { describe, expect, it } from 'vitest'
import { parseDockerfile, parseOnBuildTriggers } from '../../../src/recipe/index.ts'
import type { CopyStep, Step } from '../../../src/recipe/index.ts'

const SUM = `sha256:${'ab'.repeat(32)}`

function steps (text: string): Step[] {
  return parseDockerfile(text).stages.at(-1)?.steps ?? []
}

function copy (text: string): CopyStep {
  const s = steps(text).find((x): x is CopyStep => x.op === 'copy')
  if (s === undefined) throw new Error('no copy step')
  return s
}

describe('Dockerfile: ADD <url>', () => {
  it('reads a URL source with and without --checksum, and puts the checksum in the canonical text', () => {
    expect(copy('FROM a\nADD https://x.org/f.tgz /opt/\n').sources).toEqual([{ kind: 'url', url: 'https://x.org/f.tgz' }])
    const checked = copy(`FROM a\nADD --checksum=${SUM} http://127.0.0.1:8/f /f\n`)
    expect(checked.sources).toEqual([{ kind: 'url', url: 'http://127.0.0.1:8/f', checksum: SUM }])
    expect(checked.canonical).toContain(SUM)
    expect(copy('FROM a\nARG V=2\nADD https://x.org/v$V/f /f\n').sources).toEqual([{ kind: 'url', url: 'https://x.org/v2/f' }])
  })

  it('refuses a malformed checksum, a checksum without a URL, and URL sources for COPY', () => {
    expect(() => steps('FROM a\nADD --checksum=md5:1 https://x.org/f /f\n')).toThrow(expect.objectContaining({ name: 'RecipeSyntaxError', line: 2 }))
    expect(() => steps(`FROM a\nADD --checksum=${SUM} f /f\n`)).toThrow(expect.objectContaining({ name: 'RecipeSyntaxError', message: expect.stringContaining('needs a URL') }))
    expect(() => steps('FROM a\nCOPY https://x.org/f /f\n')).toThrow(expect.objectContaining({ name: 'UnsupportedFeatureError' }))
  })
})

describe('Dockerfile: ADD <git>', () => {
  it.each([
    ['https://github.com/x/y.git#v1.2:docs', { remote: 'https://github.com/x/y.git', ref: 'v1.2', subdir: 'docs' }],
    ['https://github.com/x/y.git', { remote: 'https://github.com/x/y.git' }],
    ['git@github.com:x/y.git#main', { remote: 'git@github.com:x/y.git', ref: 'main' }],
    ['git://127.0.0.1:9418/r.git#:sub/dir', { remote: 'git://127.0.0.1:9418/r.git', subdir: 'sub/dir' }]
  ])('%s', (src, want) => {
    expect(copy(`FROM a\nADD ${src} /src/\n`).sources).toEqual([{ kind: 'git', keepGitDir: false, ...want }])
  })

  it('keeps .git on --keep-git-dir, refuses --checksum and a subdir that climbs out', () => {
    expect(copy('FROM a\nADD --keep-git-dir https://h/r.git /s\n').sources[0]).toMatchObject({ kind: 'git', keepGitDir: true })
    expect(() => steps(`FROM a\nADD --checksum=${SUM} https://h/r.git /s\n`)).toThrow(expect.objectContaining({ name: 'RecipeSyntaxError' }))
    expect(() => steps('FROM a\nADD https://h/r.git#main:../x /s\n')).toThrow(expect.objectContaining({ name: 'RecipeSyntaxError' }))
  })
})

describe('Dockerfile: COPY --parents and --exclude', () => {
  it('records --parents and every --exclude, in the canonical text', () => {
    const s = copy('FROM a\nCOPY --parents --exclude=*.md --exclude=tmp/ ./x/./y/ /d/\n')
    expect(s).toMatchObject({ parents: true, exclude: ['*.md', 'tmp/'] })
    const plain = copy('FROM a\nCOPY ./x/./y/ /d/\n')
    expect(plain.parents).toBeUndefined()
    expect(plain.exclude).toBeUndefined()
    expect(s.canonical).not.toBe(plain.canonical)
    expect(copy('FROM a\nCOPY --exclude=*.md x /d/\n').canonical).not.toBe(copy('FROM a\nCOPY --exclude=*.txt x /d/\n').canonical)
  })

  it('substitutes variables in --exclude and allows it on ADD', () => {
    expect(copy('FROM a\nARG E=*.log\nADD --exclude=$E x /d/\n').exclude).toEqual(['*.log'])
  })
})

describe('Dockerfile: ONBUILD', () => {
  it('records the trigger as written, not substituted', () => {
    const s = steps('FROM a\nARG X=1\nONBUILD RUN echo $X\n').find(x => x.op === 'onbuild')
    expect(s).toMatchObject({ op: 'onbuild', trigger: 'RUN echo $X', source: { line: 3 } })
  })

  it.each(['ONBUILD ONBUILD RUN x', 'ONBUILD FROM b', 'onbuild maintainer me', 'ONBUILD'])('refuses %s', (line) => {
    expect(() => steps(`FROM a\n${line}\n`)).toThrow(expect.objectContaining({ name: 'RecipeSyntaxError', line: 2 }))
  })

  it('reads triggers back as steps, locations at the trigger of the base', () => {
    const got = parseOnBuildTriggers(['WORKDIR /w', 'COPY . /w/', 'RUN make'], { base: 'reg/base:1' })
    expect(got.map(s => s.op)).toEqual(['workdir', 'copy', 'run'])
    expect(got[2]?.source).toEqual({ file: 'ONBUILD trigger of reg/base:1', line: 3 })
  })

  it('substitutes from the base\'s environment', () => {
    expect(parseOnBuildTriggers(['WORKDIR $APP/src'], { base: 'b', env: { APP: '/app' } })[0]).toMatchObject({ op: 'workdir', path: '/app/src' })
  })

  it('names the base and the trigger when one is wrong', () => {
    expect(() => parseOnBuildTriggers(['RUN true', 'COPY'], { base: 'reg/base:1' }))
      .toThrow(expect.objectContaining({ name: 'RecipeSyntaxError', file: 'ONBUILD trigger of reg/base:1', line: 2 }))
    expect(() => parseOnBuildTriggers(['FROM x'], { base: 'b' })).toThrow(expect.objectContaining({ line: 1 }))
  })
})
