/**
 * The build flags docker build and buildx users know, through the real
 * `kiln` command, each checked on the image it makes (read back from an OCI
 * layout export): --label, --annotation, -q, --iidfile, --build-arg KEY from
 * the environment, -f - and context - on stdin, and several --platform
 * values into one index that -t names. Recipes are FROM scratch + COPY, so
 * no sandbox is needed and any platform builds.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { encodeTar } from '../../../src/oci/index.ts'
import { runKiln } from '../../helpers/cli.ts'

const root = mkdtempSync(join(tmpdir(), 'kiln-build-flags-'))
const dataDir = join(root, 'data')
afterAll(() => { rmSync(root, { recursive: true, force: true }) })

let n = 0
function context (dockerfile: string, files: Record<string, string> = { 'a.txt': 'hello\n' }): string {
  const dir = join(root, `ctx-${++n}`)
  mkdirSync(dir)
  writeFileSync(join(dir, 'Dockerfile'), dockerfile)
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  return dir
}

async function kiln (args: string[], options: { env?: NodeJS.ProcessEnv, input?: string | Uint8Array } = {}): Promise<{ code: number, stdout: string, stderr: string }> {
  return await runKiln(['--data-dir', dataDir, ...args], { timeoutMs: 120_000, ...options })
}

type Json = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

/** The image (manifest or index) `ref` names, exported to a layout and read back: root, manifests and configs. */
async function readImage (ref: string): Promise<{ root: Json, manifests: Json[], configs: Json[] }> {
  const out = join(root, `layout-${++n}`)
  const r = await kiln(['image', 'export', ref, `oci:${out}`])
  expect(r.code, r.stderr).toBe(0)
  const blob = (digest: string): Json => JSON.parse(readFileSync(join(out, 'blobs/sha256', digest.slice(7)), 'utf8')) as Json
  const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as Json
  const top = blob(index.manifests[0].digest as string)
  const manifests = Array.isArray(top.manifests) ? (top.manifests as Json[]).map(d => blob(d.digest as string)) : [top]
  return { root: top, manifests, configs: manifests.map(m => blob(m.config.digest as string)) }
}

describe('kiln build flags', () => {
  it('--label sets config labels over the recipe\'s, --annotation the manifest\'s annotations', async () => {
    const ctx = context('FROM scratch\nLABEL a=recipe b=recipe\nCOPY a.txt /\n')
    const r = await kiln(['build', '-t', 'flags/labels:1', '--label', 'b=flag', '--label', 'c=', '--annotation', 'org.opencontainers.image.source=https://example.org/app', ctx])
    expect(r.code, r.stderr).toBe(0)
    const image = await readImage('flags/labels:1')
    expect(image.configs[0]?.config.Labels).toEqual({ a: 'recipe', b: 'flag', c: '' })
    expect(image.manifests[0]?.annotations).toEqual({ 'org.opencontainers.image.source': 'https://example.org/app' })
    const bad = await kiln(['build', '--label', 'novalue', ctx])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--label novalue: expected KEY=VALUE/)
  })

  it('-q prints the digest alone, --iidfile writes it, and both name what -t names', async () => {
    const ctx = context('FROM scratch\nCOPY a.txt /\n')
    const iid = join(root, 'image.iid')
    const r = await kiln(['build', '-q', '--iidfile', iid, '-t', 'flags/quiet:1', ctx])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/)
    expect(readFileSync(iid, 'utf8')).toBe(r.stdout.trim())
    const ls = JSON.parse((await kiln(['image', 'ls', '--json'])).stdout) as Array<{ repository: string, tag: string, digest: string }>
    expect(ls.find(i => i.repository === 'flags/quiet' && i.tag === '1')?.digest).toBe(r.stdout.trim())
    expect((await kiln(['build', '-q', '--json', ctx])).code).toBe(2)
  })

  it('--build-arg KEY takes the environment\'s value; a KEY the environment lacks leaves the ARG default', async () => {
    const ctx = context('FROM scratch\nARG FROM_ENV=default\nARG UNSET=default\nLABEL from_env=$FROM_ENV unset=$UNSET\nCOPY a.txt /\n')
    const r = await kiln(['build', '-t', 'flags/args:1', '--build-arg', 'FROM_ENV', '--build-arg', 'UNSET', ctx], { env: { FROM_ENV: 'from the env', UNSET: undefined } })
    expect(r.code, r.stderr).toBe(0)
    expect((await readImage('flags/args:1')).configs[0]?.config.Labels).toEqual({ from_env: 'from the env', unset: 'default' })
  })

  it('-f - reads the recipe from stdin; context - reads a context tar from stdin', async () => {
    const ctx = context('FROM scratch\nCOPY a.txt /on-disk\n', { 'a.txt': 'from the directory\n' })
    const viaF = await kiln(['build', '-t', 'flags/stdin:f', '-f', '-', ctx], { input: 'FROM scratch\nCOPY a.txt /from-stdin-recipe\n' })
    expect(viaF.code, viaF.stderr).toBe(0)
    const tarChunks: Uint8Array[] = []
    for await (const c of encodeTar([
      { type: 'file', path: 'Dockerfile', mode: 0o644, content: Buffer.from('FROM scratch\nCOPY b.txt /from-tar\n') },
      { type: 'file', path: 'b.txt', mode: 0o644, content: Buffer.from('from the tar\n') }
    ])) tarChunks.push(c)
    const viaTar = await kiln(['build', '-t', 'flags/stdin:tar', '-o', `type=local,dest=${join(root, 'tar-rootfs')}`, '-'], { input: Buffer.concat(tarChunks) })
    expect(viaTar.code, viaTar.stderr).toBe(0)
    expect(readFileSync(join(root, 'tar-rootfs', 'from-tar'), 'utf8')).toBe('from the tar\n')
    expect((await readImage('flags/stdin:f')).configs[0]?.history.map((h: Json) => h.created_by)).toEqual(['COPY a.txt /from-stdin-recipe'])
  })

  it('kiln image export writes the root filesystem with type=tar and --format local', async () => {
    const ctx = context('FROM scratch\nCOPY a.txt /etc/a.txt\n')
    expect((await kiln(['build', '-q', '-t', 'flags/rootfs:1', ctx])).code).toBe(0)
    const tar = join(root, 'rootfs.tar')
    const r = await kiln(['image', 'export', 'flags/rootfs:1', `type=tar,dest=${tar}`, '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ dest: tar, format: 'tar' })
    expect(execFileSync('tar', ['-xOf', tar, 'etc/a.txt'], { encoding: 'utf8' })).toBe('hello\n')
    const dir = join(root, 'rootfs-dir')
    expect((await kiln(['image', 'export', 'flags/rootfs:1', '--format', 'local', dir])).code).toBe(0)
    expect(readFileSync(join(dir, 'etc', 'a.txt'), 'utf8')).toBe('hello\n')
    const again = await kiln(['image', 'export', 'flags/rootfs:1', '--format', 'local', dir])
    expect(again.code).not.toBe(0)
    expect(again.stderr).toMatch(/is not empty/)
  })

  it('several --platform values build each and store an index that -t names, with index: annotations on it', async () => {
    const ctx = context('FROM scratch\nCOPY a.txt /\n')
    const r = await kiln(['build', '--json', '-t', 'flags/multi:1', '--platform', 'linux/amd64,linux/arm64', '--platform', 'linux/amd64', '--annotation', 'index:org.example.index=yes', '--label', 'l=1', ctx])
    expect(r.code, r.stderr).toBe(0)
    const summary = JSON.parse(r.stdout) as { digest: string, mediaType: string, platforms: Array<{ platform: string, digest: string }> }
    expect(summary.mediaType).toBe('application/vnd.oci.image.index.v1+json')
    expect(summary.platforms.map(p => p.platform)).toEqual(['linux/amd64', 'linux/arm64'])
    const image = await readImage('flags/multi:1')
    expect(image.root.annotations).toEqual({ 'org.example.index': 'yes' })
    expect(image.root.manifests.map((m: Json) => `${m.platform.os as string}/${m.platform.architecture as string}`)).toEqual(['linux/amd64', 'linux/arm64'])
    expect(image.root.manifests.map((m: Json) => m.digest)).toEqual(summary.platforms.map(p => p.digest))
    expect(image.configs.map(c => c.architecture)).toEqual(['amd64', 'arm64'])
    expect(image.configs.map(c => c.config.Labels)).toEqual([{ l: '1' }, { l: '1' }])
    const one = await kiln(['build', '--annotation', 'index:a=b', ctx])
    expect(one.code).toBe(2)
    expect(one.stderr).toMatch(/a build of one platform makes no index/)
    const descriptor = await kiln(['build', '--annotation', 'manifest-descriptor:a=b', ctx])
    expect(descriptor.code).toBe(2)
    expect(descriptor.stderr).toMatch(/the manifest-descriptor level is not supported/)
  })
})
