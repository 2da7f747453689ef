/**
 * .dockerignore rules against Docker's own examples: the "Dockerfile
 * reference → .dockerignore file" page of docs.docker.com, moby's
 * patternmatcher tests (whose table comes partly from Go's filepath.Match
 * tests) and BuildKit's choice of ignore file; then the walk a build and a
 * context tar share.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { IgnorePatternError, listContext, parseIgnoreFile, readContextIgnore, isVisible } from '../../../src/builder/context/index.ts'

const rules = (...lines: string[]): ReturnType<typeof parseIgnoreFile> => parseIgnoreFile(lines.join('\n'))

describe('the examples of the .dockerignore documentation', () => {
  // Each row: the file's lines, then paths and whether the build context loses them.
  const cases: Array<[string[], Array<[string, boolean]>]> = [
    [['# comment', '*/temp*', '*/*/temp*', 'temp?'], [
      ['somedir/temporary.txt', true], ['somedir/temp', true], ['somedir/temp/inner.txt', true],
      ['somedir/subdir/temporary.txt', true], ['tempa', true], ['tempb', true],
      ['temp', false], ['temporary.txt', false], ['a/b/c/temp', false], ['x/y/z/tempa', false], ['# comment', false]
    ]],
    [['**/*.go'], [['main.go', true], ['cmd/kiln/main.go', true], ['main.go.txt', false], ['go/README', false]]],
    [['*.md', '!README.md'], [['CHANGES.md', true], ['README.md', false], ['docs/guide.md', false]]],
    [['*.md', '!README*.md', 'README-secret.md'], [['README.md', false], ['README-public.md', false], ['README-secret.md', true], ['notes.md', true]]],
    [['*.md', 'README-secret.md', '!README*.md'], [['README-secret.md', false], ['README.md', false], ['notes.md', true]]],
    // "/foo/bar and foo/bar both exclude a file or directory named bar in the foo subdirectory".
    [['/foo/bar'], [['foo/bar', true], ['foo/bar/baz', true], ['foo/barn', false], ['x/foo/bar', false]]],
    [['foo/bar'], [['foo/bar', true], ['foo/bar/baz', true]]],
    // Cleaned like filepath.Clean: `.`/`..` elements, doubled and trailing slashes go.
    [['./a//b/../c/'], [['a/c', true], ['a/c/d', true], ['a/b/c', false]]],
    // "For historical reasons, the pattern . is ignored."
    [['.'], [['Dockerfile', false], ['src/main.c', false]]],
    // The Dockerfile and .dockerignore can be excluded too (COPY . then leaves them out).
    [['Dockerfile', '.dockerignore'], [['Dockerfile', true], ['.dockerignore', true], ['Dockerfile.prod', false]]]
  ]
  it.each(cases)('%j', (lines, paths) => {
    const r = rules(...lines)
    for (const [path, excluded] of paths) expect([path, r.excludes(path)]).toEqual([path, excluded])
  })
})

describe("moby's patternmatcher table", () => {
  // pattern, path, matches the path itself, matches it or one of its parent dirs
  const table: Array<[string, string, boolean, boolean]> = [
    ['**', 'file', true, true], ['**', 'file/', true, true], ['**/', 'file', true, true], ['**/', 'file/', true, true],
    ['**', '/', true, true], ['**/', '/', true, true], ['**', 'dir/file', true, true], ['**/', 'dir/file', true, true],
    ['**', 'dir/file/', true, true], ['**/', 'dir/file/', true, true], ['**/**', 'dir/file', true, true], ['**/**', 'dir/file/', true, true],
    ['dir/**', 'dir/file', true, true], ['dir/**', 'dir/file/', true, true], ['dir/**', 'dir/dir2/file', true, true], ['dir/**', 'dir/dir2/file/', true, true],
    ['**/dir', 'dir', true, true], ['**/dir', 'dir/file', false, true],
    ['**/dir2/*', 'dir/dir2/file', true, true], ['**/dir2/*', 'dir/dir2/file/', false, true],
    ['**/dir2/**', 'dir/dir2/dir3/file', true, true], ['**/dir2/**', 'dir/dir2/dir3/file/', true, true],
    ['**file', 'file', true, true], ['**file', 'dir/file', true, true], ['**/file', 'dir/file', true, true],
    ['**file', 'dir/dir/file', true, true], ['**/file', 'dir/dir/file', true, true],
    ['**/file*', 'dir/dir/file', true, true], ['**/file*', 'dir/dir/file.txt', true, true],
    ['**/file*txt', 'dir/dir/file.txt', true, true], ['**/file*.txt', 'dir/dir/file.txt', true, true],
    ['**/file*.txt*', 'dir/dir/file.txt', true, true], ['**/**/*.txt', 'dir/dir/file.txt', true, true],
    ['**/**/*.txt2', 'dir/dir/file.txt', false, false], ['**/*.txt', 'file.txt', true, true], ['**/**/*.txt', 'file.txt', true, true],
    ['a**/*.txt', 'a/file.txt', true, true], ['a**/*.txt', 'a/dir/file.txt', true, true], ['a**/*.txt', 'a/dir/dir/file.txt', true, true],
    ['a/*.txt', 'a/dir/file.txt', false, false], ['a/*.txt', 'a/file.txt', true, true], ['a/*.txt**', 'a/file.txt', true, true],
    ['a[b-d]e', 'ae', false, false], ['a[b-d]e', 'ace', true, true], ['a[b-d]e', 'aae', false, false], ['a[^b-d]e', 'aze', true, true],
    ['.*', '.foo', true, true], ['.*', 'foo', false, false],
    ['abc.def', 'abcdef', false, false], ['abc.def', 'abc.def', true, true], ['abc.def', 'abcZdef', false, false],
    ['abc?def', 'abcZdef', true, true], ['abc?def', 'abcdef', false, false],
    ['**/foo/bar', 'foo/bar', true, true], ['**/foo/bar', 'dir/foo/bar', true, true], ['**/foo/bar', 'dir/dir2/foo/bar', true, true],
    ['abc/**', 'abc', false, false], ['abc/**', 'abc/def', true, true], ['abc/**', 'abc/def/ghi', true, true],
    ['**/.foo', '.foo', true, true], ['**/.foo', 'bar.foo', false, false],
    ['a(b)c/def', 'a(b)c/def', true, true], ['a(b)c/def', 'a(b)c/xyz', false, false], ['a.|)$(}+{bc', 'a.|)$(}+{bc', true, true],
    ['dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', true, true],
    ['dist/*.whl', 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', true, true],
    ['a\\\\', 'a\\', true, true], ['a\\*b', 'a*b', true, true],
    // Docker's suffix shortcut: `**` then literal text matches by suffix.
    ['**.go', 'main.go', true, true],
    // Go's filepath.Match table, as patternmatcher runs it.
    ['abc', 'abc', true, true], ['*', 'abc', true, true], ['*c', 'abc', true, true], ['a*', 'a', true, true], ['a*', 'abc', true, true],
    ['a*', 'ab/c', false, true], ['a*/b', 'abc/b', true, true], ['a*/b', 'a/c/b', false, false],
    ['a*b*c*d*e*/f', 'axbxcxdxe/f', true, true], ['a*b*c*d*e*/f', 'axbxcxdxexxx/f', true, true],
    ['a*b*c*d*e*/f', 'axbxcxdxe/xxx/f', false, false], ['a*b*c*d*e*/f', 'axbxcxdxexxx/fff', false, false],
    ['a*b?c*x', 'abxbbxdbxebxczzx', true, true], ['a*b?c*x', 'abxbbxdbxebxczzy', false, false],
    ['ab[c]', 'abc', true, true], ['ab[b-d]', 'abc', true, true], ['ab[e-g]', 'abc', false, false],
    ['ab[^c]', 'abc', false, false], ['ab[^b-d]', 'abc', false, false], ['ab[^e-g]', 'abc', true, true],
    ['a\\*b', 'ab', false, false], ['a?b', 'a☺b', true, true], ['a[^a]b', 'a☺b', true, true], ['a???b', 'a☺b', false, false],
    ['a[^a][^a][^a]b', 'a☺b', false, false], ['[a-ζ]*', 'α', true, true], ['*[a-ζ]', 'A', false, false],
    ['a?b', 'a/b', false, false], ['a*b', 'a/b', false, false],
    ['[\\]a]', ']', true, true], ['[\\-]', '-', true, true], ['[x\\-]', 'x', true, true], ['[x\\-]', '-', true, true], ['[x\\-]', 'z', false, false],
    ['[\\-x]', 'x', true, true], ['[\\-x]', '-', true, true], ['[\\-x]', 'a', false, false], ['*x', 'xxx', true, true],
    // `!` opens no negation in Go's classes: [!a-c] is the class of !, a, b and c.
    ['[!a-c]x', 'bx', true, true], ['[!a-c]x', '!x', true, true], ['[!a-c]x', 'dx', false, false]
  ]
  it.each(table)('%s on %s', (pattern, path, itself, orParent) => {
    const r = rules(pattern)
    expect(r.patterns[0]?.matches(path)).toBe(itself)
    expect(r.excludes(path)).toBe(orParent)
  })

  it.each([
    [['**', '!util/docker/web'], 'util/docker/web/foo', false],
    [['**', '!util/docker/web', 'util/docker/web/foo'], 'util/docker/web/foo', true],
    [['**', '!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl'], 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', false],
    [['**', '!dist/*.whl'], 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', false],
    [['!fileutils.go', '*.go'], 'fileutils.go', true],
    [['*.go', '!fileutils.go'], 'fileutils.go', false],
    [['docs', '!docs/README.md'], 'docs/README.md', false],
    [['docs/', '!docs/README.md'], 'docs/README.md', false],
    [['docs/*', '!docs/README.md'], 'docs/README.md', false],
    [['docs', '  !docs/README.md  '], 'docs/README.md', false]
  ])('%j on %s -> %s (the last matching pattern wins)', (lines, path, excluded) => {
    expect(rules(...lines).excludes(path)).toBe(excluded)
  })

  it.each(['[]a]', '[-]', '[x-]', '[-x]', '\\', '[a-b-c]', '[', '[^', '[^bc', 'a[', '[z-a]', '!', '  !  '])('refuses the malformed pattern %j, naming file and line', (pattern) => {
    let caught: unknown
    try { parseIgnoreFile(`ok\n${pattern}\n`, '/ctx/.dockerignore') } catch (err) { caught = err }
    expect(caught).toBeInstanceOf(IgnorePatternError)
    expect(caught).toMatchObject({ name: 'IgnorePatternError', file: '/ctx/.dockerignore', line: 2 })
  })

  it('reads lines as moby ignorefile does: BOM, CRLF, comments only in the first column', () => {
    const r = parseIgnoreFile('\uFEFFsecret.env\r\n#kept.txt\r\n # spaced\r\n\r\n')
    expect(r.excludes('secret.env')).toBe(true)
    expect(r.excludes('#kept.txt')).toBe(false)
    expect(r.excludes('# spaced')).toBe(true)
    expect(r.patterns.map(p => p.text)).toEqual(['secret.env', '# spaced'])
  })

  it('knows which excluded dirs an exception may reach into', () => {
    const r = rules('node_modules', 'build', '!build/keep/**', 'cache', '!**/*.keep')
    expect(rules('node_modules').mayIncludeUnder('node_modules')).toBe(false)
    expect(rules('build', '!build/keep/**').mayIncludeUnder('build')).toBe(true)
    expect(rules('build', '!build/keep/**').mayIncludeUnder('build/other')).toBe(false)
    expect(rules('build', '!build/keep/**').mayIncludeUnder('buildx')).toBe(false)
    expect(r.mayIncludeUnder('node_modules')).toBe(true)
  })
})

let dir: string
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'kiln-ignore-')) })
afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

const tree = async (files: Record<string, string>): Promise<void> => {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true })
    await writeFile(join(dir, path), text)
  }
}

describe('the ignore file a build honours', () => {
  it("takes the recipe's own <recipe>.dockerignore over the context's, and the context's without one", async () => {
    await tree({ '.dockerignore': 'a.txt\n', 'build/app.Dockerfile': 'FROM scratch\n', 'build/app.Dockerfile.dockerignore': 'b.txt\n', Dockerfile: 'FROM scratch\n' })
    const own = await readContextIgnore(dir, { recipeFile: join(dir, 'build/app.Dockerfile') })
    expect(own.file).toBe(join(dir, 'build/app.Dockerfile.dockerignore'))
    expect([own.excludes('a.txt'), own.excludes('b.txt')]).toEqual([false, true])
    const context = await readContextIgnore(dir, { recipeFile: join(dir, 'Dockerfile') })
    expect(context.file).toBe(join(dir, '.dockerignore'))
    expect([context.excludes('a.txt'), context.excludes('b.txt')]).toEqual([true, false])
    await rm(join(dir, '.dockerignore'))
    const none = await readContextIgnore(dir)
    expect(none.file).toBeUndefined()
    expect(none.excludes('a.txt')).toBe(false)
  })

  it('fails on an ignore file it cannot read rather than building without it', async () => {
    await mkdir(join(dir, '.dockerignore'))
    await expect(readContextIgnore(dir)).rejects.toMatchObject({ code: 'EISDIR' })
  })
})

describe('the entries a build sees', () => {
  it('keeps the dirs that lead to an exception inside an excluded dir, and nothing else of it', async () => {
    await tree({
      Dockerfile: 'FROM scratch\n', 'secret.env': 'TOKEN=x', 'docs/a.md': 'a', 'docs/README.md': 'r',
      'vendor/x/keep.me': 'k', 'vendor/x/drop.txt': 'd', 'vendor/y/drop.txt': 'd', 'node_modules/m/index.js': 'm'
    })
    await symlink('secret.env', join(dir, 'link'))
    const r = rules('secret.env', 'docs', '!docs/README.md', 'vendor', '!**/*.me', 'node_modules')
    expect((await listContext(dir, r)).map(e => `${e.type[0] as string} ${e.path}`)).toEqual([
      'f Dockerfile', 'd docs', 'f docs/README.md', 's link', 'd vendor', 'd vendor/x', 'f vendor/x/keep.me'
    ])
    expect(await isVisible(dir, 'docs', r)).toBe(true)
    expect(await isVisible(dir, 'vendor/y', r)).toBe(false)
    expect(await isVisible(dir, 'node_modules', r)).toBe(false)
    expect((await listContext(dir, r, { under: 'vendor' })).map(e => e.path)).toEqual(['vendor/x', 'vendor/x/keep.me'])
  })
})
