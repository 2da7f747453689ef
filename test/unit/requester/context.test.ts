import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { listContext, packContext } from '../../../src/requester/context-pack.ts'
import { parseDockerignore } from '../../../src/requester/dockerignore.ts'

describe('.dockerignore', () => {
  it.each([
    ['*.md', 'README.md', true], ['*.md', 'docs/a.md', false], ['**/*.md', 'docs/x/a.md', true],
    ['**/*.md', 'a.md', true], ['docs', 'docs/x/y.txt', true], ['/build/', 'build/out', true],
    ['a?c', 'abc', true], ['a?c', 'a/c', false], ['[a-c]x', 'bx', true], ['[!a-c]x', 'bx', false],
    ['node_modules/**', 'node_modules/x/y', true], ['x/**/y', 'x/y', true], ['x/**/y', 'x/1/2/y', true]
  ])('%s on %s -> %s', (pattern, path, expected) => {
    expect(parseDockerignore(pattern).ignores(path)).toBe(expected)
  })

  it('lets the last matching rule win, with ! exceptions', () => {
    const m = parseDockerignore('# comment\n*.log\n!keep.log\nlogs\n!logs/important.txt\n')
    expect(m.ignores('a.log')).toBe(true)
    expect(m.ignores('keep.log')).toBe(false)
    expect(m.ignores('logs/x')).toBe(true)
    expect(m.ignores('logs/important.txt')).toBe(false)
    expect(m.hasExceptions).toBe(true)
  })
})

let dir: string
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'kiln-ctx-')) })
afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

async function digestOf (src: AsyncIterable<Uint8Array>): Promise<string> {
  const h = createHash('sha256')
  for await (const c of src) h.update(c)
  return h.digest('hex')
}

describe('packContext', () => {
  it('packs the same tree to the same bytes regardless of times, honouring .dockerignore', async () => {
    await mkdir(join(dir, 'src/deep'), { recursive: true })
    await mkdir(join(dir, 'secrets'))
    await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\n')
    await writeFile(join(dir, 'src/deep/a.c'), 'int main(){}')
    await writeFile(join(dir, 'secrets/key'), 'k')
    await writeFile(join(dir, 'secrets/public.pem'), 'p')
    await writeFile(join(dir, 'x.log'), 'l')
    await symlink('src/deep/a.c', join(dir, 'link'))
    await writeFile(join(dir, '.dockerignore'), 'secrets\n!secrets/public.pem\n**/*.log\n')
    const paths = (await listContext(dir)).map(e => e.path)
    expect(paths).toEqual(['.dockerignore', 'Dockerfile', 'link', 'secrets/public.pem', 'src', 'src/deep', 'src/deep/a.c'])
    const first = await digestOf(packContext(dir))
    await utimes(join(dir, 'src/deep/a.c'), new Date(1e12), new Date(1e12))
    expect(await digestOf(packContext(dir))).toBe(first)
    await writeFile(join(dir, 'src/deep/a.c'), 'int main(){return 1;}')
    expect(await digestOf(packContext(dir))).not.toBe(first)
  })
})
