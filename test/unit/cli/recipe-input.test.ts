/**
 * readRecipeInput's stdin rules (Docker's): `-f -` reads the recipe from
 * stdin, context `-` a tar of the context (the recipe in it, or -f a path in
 * it) or, when stdin is no tar, the recipe alone with an empty context; and
 * `--build-arg KEY` taking KEY from the environment.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, describe, expect, it } from 'vitest'
import { looksLikeArchive, parseBuildArgs, readRecipeInput } from '../../../src/cli/recipe-input.ts'
import { encodeTar } from '../../../src/oci/index.ts'
import type { LayerEntry } from '../../../src/oci/index.ts'

const root = mkdtempSync(join(tmpdir(), 'kiln-recipe-input-'))
afterAll(() => { rmSync(root, { recursive: true, force: true }) })

async function * stdinOf (bytes: Uint8Array, chunk = 100): AsyncIterable<Uint8Array> {
  for (let i = 0; i < bytes.length; i += chunk) yield bytes.subarray(i, i + chunk)
}

async function tarOf (files: Record<string, string>): Promise<Buffer> {
  const entries: LayerEntry[] = Object.entries(files).map(([path, text]) => ({ type: 'file', path, mode: 0o644, content: Buffer.from(text) }))
  const chunks: Uint8Array[] = []
  for await (const c of encodeTar(entries)) chunks.push(c)
  return Buffer.concat(chunks)
}

const enc = (s: string): Uint8Array => Buffer.from(s)

describe('--build-arg', () => {
  it('KEY=VALUE sets, KEY alone takes the environment\'s value, and a KEY the environment lacks stays unset', () => {
    expect(parseBuildArgs(['A=1', 'B=', 'C', 'D'], { C: 'from-env' })).toEqual({ A: '1', B: '', C: 'from-env' })
    expect(() => parseBuildArgs(['=1'], {})).toThrow(/--build-arg =1: expected KEY=VALUE/)
    expect(() => parseBuildArgs(['bad key'], {})).toThrow(/expected KEY=VALUE, or KEY/)
  })
})

describe('readRecipeInput', () => {
  it('-f - reads the recipe from stdin; the context is the directory given and the front-end follows the text', async () => {
    const ctx = join(root, 'ctx-f')
    mkdirSync(ctx)
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY on-disk /\n')
    const docker = await readRecipeInput(ctx, '-', ['X'], { stdin: stdinOf(enc('FROM scratch\nCOPY from-stdin /\n')), env: { X: '7' } })
    expect(docker).toMatchObject({ contextDir: ctx, text: 'FROM scratch\nCOPY from-stdin /\n', buildArgs: { X: '7' } })
    expect(basename(docker.recipePath)).toBe('Dockerfile')
    const def = await readRecipeInput(ctx, '-', [], { stdin: stdinOf(enc('Bootstrap: scratch\n%files\n  a /a\n')) })
    expect(basename(def.recipePath)).toBe('Singularity.def')
    await expect(readRecipeInput(ctx, '-', [], { stdin: stdinOf(enc('  \n')) })).rejects.toThrow(/stdin is empty/)
  })

  it('context - unpacks a tar from stdin, finds the recipe in it, and cleanup removes it', async () => {
    const tar = await tarOf({ Dockerfile: 'FROM scratch\nCOPY a.txt /\n', 'a.txt': 'hello\n', 'sub/Other.dockerfile': 'FROM scratch\nCOPY sub /sub\n' })
    for (const bytes of [tar, gzipSync(tar)]) {
      const input = await readRecipeInput('-', undefined, [], { stdin: stdinOf(bytes) })
      expect(input.text).toBe('FROM scratch\nCOPY a.txt /\n')
      expect(readFileSync(join(input.contextDir, 'a.txt'), 'utf8')).toBe('hello\n')
      await input.cleanup()
      expect(existsSync(input.contextDir)).toBe(false)
    }
    const other = await readRecipeInput('-', 'sub/Other.dockerfile', [], { stdin: stdinOf(tar) })
    expect(other.text).toBe('FROM scratch\nCOPY sub /sub\n')
    expect(other.recipePath).toBe(join(other.contextDir, 'sub/Other.dockerfile'))
    await other.cleanup()
  })

  it('context - with -f naming what the tar lacks, or a path out of it, fails and leaves no temp dir', async () => {
    const tar = await tarOf({ Dockerfile: 'FROM scratch\n' })
    const before = readdirSync(tmpdir()).filter(n => n.startsWith('kiln-context-')).length
    await expect(readRecipeInput('-', 'nope/Dockerfile', [], { stdin: stdinOf(tar) })).rejects.toThrow(/-f nope\/Dockerfile: no such file in the context tar/)
    await expect(readRecipeInput('-', '../../etc/passwd', [], { stdin: stdinOf(tar) })).rejects.toThrow(/no such file in the context tar/)
    expect(readdirSync(tmpdir()).filter(n => n.startsWith('kiln-context-')).length).toBe(before)
  })

  it('context - does not follow a recipe that is a link out of the tar', async () => {
    const chunks: Uint8Array[] = []
    for await (const c of encodeTar([{ type: 'symlink', path: 'Dockerfile', target: '/etc/passwd' }])) chunks.push(c)
    await expect(readRecipeInput('-', undefined, [], { stdin: stdinOf(Buffer.concat(chunks)) })).rejects.toThrow(/no recipe in the context tar on stdin/)
    await expect(readRecipeInput('-', 'Dockerfile', [], { stdin: stdinOf(Buffer.concat(chunks)) })).rejects.toThrow(/no such file in the context tar/)
  })

  it('context - with no tar on stdin takes stdin as the recipe and the context empty', async () => {
    const input = await readRecipeInput('-', undefined, [], { stdin: stdinOf(enc('FROM scratch\nENV A=1\n'), 3) })
    expect(input.text).toBe('FROM scratch\nENV A=1\n')
    expect(readdirSync(input.contextDir)).toEqual([])
    await input.cleanup()
    await expect(readRecipeInput('-', 'Dockerfile', [], { stdin: stdinOf(enc('FROM scratch\n')) })).rejects.toThrow(/stdin is not a tar/)
  })

  it('refuses stdin for both the recipe and the context', async () => {
    await expect(readRecipeInput('-', '-', [], { stdin: stdinOf(enc('FROM scratch\n')) })).rejects.toThrow(/both read stdin/)
  })

  it('tells a tar, a gzip and a zstd stream from a recipe', async () => {
    expect(looksLikeArchive(await tarOf({ a: 'x' }))).toBe(true)
    expect(looksLikeArchive(gzipSync(Buffer.from('x')))).toBe(true)
    expect(looksLikeArchive(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0]))).toBe(true)
    expect(looksLikeArchive(enc('FROM scratch\n'.repeat(60)))).toBe(false)
  })
})
