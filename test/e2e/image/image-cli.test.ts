/**
 * `kiln image` end to end, with real tools: an image made by umoci from
 * Debian's busybox-static is imported, exported, and accepted again by
 * skopeo and umoci with its digest unchanged; hostile layers unpacked with
 * `kiln image unpack` (as root, when the tests run as root) write nothing
 * outside the target.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runKiln, REPO_ROOT } from '../../helpers/cli.ts'
import { haveTools } from '../../helpers/tools.ts'
import { startDockerRegistry } from '../../integration/registry/docker-registry.ts'
import { buildTarGz, rawHeader } from '../../unit/oci/helpers.ts'
import { writeLayout } from '../../helpers/oci-layout.ts'
import { sha256Digest } from '../../../src/content/index.ts'

const MAKE_BASE = join(REPO_ROOT, '..', 'shared', 'bench', 'make-busybox-base.sh')
const work = mkdtempSync(join(tmpdir(), 'kiln-image-e2e-'))
const dataDir = join(work, 'data')
afterAll(() => { rmSync(work, { recursive: true, force: true }) })

function sh (cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

async function kiln (...args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  return await runKiln(['--data-dir', dataDir, ...args])
}

describe.skipIf(!haveTools('skopeo', 'umoci', 'busybox'))('kiln image with skopeo and umoci', () => {
  const layout = join(work, 'busybox')
  let digest: string
  beforeAll(() => {
    sh('sh', [MAKE_BASE, layout, 'base'])
    digest = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')).manifests[0].digest as string
  })

  it('imports an umoci-made layout, keeping its digest', async () => {
    const r = await kiln('image', 'import', `oci:${layout}:base`, '-t', 'e2e/busybox:base', '--json')
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual([expect.objectContaining({ name: 'e2e/busybox:base', digest })])
    const inspect = JSON.parse((await kiln('image', 'inspect', 'e2e/busybox:base', '--json')).stdout) as { digest: string, platforms: string[] }
    expect(inspect.digest).toBe(digest)
    expect(inspect.platforms).toEqual(['linux/amd64'])
    const ls = JSON.parse((await kiln('image', 'ls', '--json')).stdout) as Array<{ repository: string, tag: string }>
    expect(ls.map(x => `${x.repository}:${x.tag}`)).toContain('e2e/busybox:base')
  })

  it('exports an oci layout that skopeo inspects and umoci unpacks, digest unchanged', async () => {
    const out = join(work, 'export-layout')
    expect((await kiln('image', 'export', 'e2e/busybox:base', out)).code).toBe(0)
    const info = JSON.parse(sh('skopeo', ['inspect', `oci:${out}:base`])) as { Digest: string }
    expect(info.Digest).toBe(digest)
    const bundle = join(work, 'bundle')
    sh('umoci', ['unpack', '--rootless', '--image', `${out}:base`, bundle])
    expect(existsSync(join(bundle, 'rootfs', 'bin', 'busybox'))).toBe(true)
  })

  it('exports an oci-archive that skopeo reads, and re-imports it to the same digest', async () => {
    const archive = join(work, 'busybox.tar')
    expect((await kiln('image', 'export', 'e2e/busybox:base', '--format', 'oci-archive', archive)).code).toBe(0)
    const info = JSON.parse(sh('skopeo', ['inspect', `oci-archive:${archive}:base`])) as { Digest: string }
    expect(info.Digest).toBe(digest)
    const r = await kiln('image', 'import', `oci-archive:${archive}`, '-t', 'e2e/again:1', '--json')
    expect(JSON.parse(r.stdout)[0].digest).toBe(digest)
  })

  it('takes a transport prefix on the destination as the format, not as part of a file name', async () => {
    const archive = join(work, 'prefixed.tar')
    const r = await kiln('image', 'export', 'e2e/busybox:base', `oci-archive:${archive}`, '--json')
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ dest: archive, format: 'oci-archive', digest })
    expect((JSON.parse(sh('skopeo', ['inspect', `oci-archive:${archive}:base`])) as { Digest: string }).Digest).toBe(digest)

    const layoutDir = join(work, 'prefixed-layout')
    expect((await kiln('image', 'export', 'e2e/busybox:base', `oci:${layoutDir}:v2`)).code).toBe(0)
    expect((JSON.parse(sh('skopeo', ['inspect', `oci:${layoutDir}:v2`])) as { Digest: string }).Digest).toBe(digest)

    const docker = join(work, 'prefixed-docker.tar')
    expect((await kiln('image', 'export', 'e2e/busybox:base', `docker-archive:${docker}`)).code).toBe(0)
    const manifest = JSON.parse(sh('tar', ['-xOf', docker, 'manifest.json'])) as Array<{ RepoTags: string[] }>
    expect(manifest[0]?.RepoTags).toEqual(['e2e/busybox:base'])
    expect(JSON.parse(sh('skopeo', ['inspect', `docker-archive:${docker}`])) as { Layers: string[] }).toMatchObject({ Layers: [expect.stringMatching(/^sha256:/)] })

    const both = await kiln('image', 'export', 'e2e/busybox:base', '--format', 'oci-layout', `oci-archive:${archive}`)
    expect(both.code).toBe(2)
    expect(both.stderr).toMatch(/names its format/)
  })

  it.skipIf(!haveTools('docker-registry'))('imports docker:// from a registry, named as pulled, and names nothing when the image is absent', async () => {
    const registry = await startDockerRegistry()
    try {
      sh('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${layout}:base`, `docker://${registry.hostPort}/e2e/pulled:1`])
      const r = await kiln('image', 'import', `docker://${registry.hostPort}/e2e/pulled:1`, '--json')
      expect(r.code, r.stderr).toBe(0)
      expect(JSON.parse(r.stdout)).toEqual([expect.objectContaining({ name: `${registry.hostPort}/e2e/pulled:1`, digest })])
      expect(JSON.parse((await kiln('image', 'inspect', `${registry.hostPort}/e2e/pulled:1`, '--json')).stdout)).toMatchObject({ digest })
      const missing = await kiln('image', 'import', `docker://${registry.hostPort}/e2e/absent:1`)
      expect(missing.code).not.toBe(0)
      expect(JSON.parse((await kiln('image', 'ls', '--json')).stdout).map((x: { repository: string }) => x.repository)).not.toContain(`${registry.hostPort}/e2e/absent`)
    } finally { await registry.stop() }
  })

  it('imports a docker-archive made by skopeo', async () => {
    const archive = join(work, 'docker.tar')
    sh('skopeo', ['copy', '-q', `oci:${layout}:base`, `docker-archive:${archive}:e2e/docker:1`])
    const r = await kiln('image', 'import', `docker-archive:${archive}`, '--json')
    expect(r.code).toBe(0)
    const rows = JSON.parse(r.stdout) as Array<{ name: string }>
    // skopeo records the normalized name in RepoTags; kiln keeps names as the source wrote them.
    expect(rows.map(x => x.name)).toEqual(['docker.io/e2e/docker:1'])
    const unpacked = join(work, 'from-docker')
    expect((await kiln('image', 'unpack', rows[0]?.name ?? '', unpacked)).code).toBe(0)
    expect(existsSync(join(unpacked, 'bin', 'busybox'))).toBe(true)
  })

  it('unpacks to a sysroot and refuses a non-empty target', async () => {
    const root = join(work, 'sysroot')
    const r = await kiln('image', 'unpack', 'e2e/busybox:base', root, '--json')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ layers: 1, platform: 'linux/amd64' })
    expect(sh(join(root, 'bin', 'busybox'), ['echo', 'ok']).trim()).toBe('ok')
    const again = await kiln('image', 'unpack', 'e2e/busybox:base', root)
    expect(again.code).toBe(2)
    expect(again.stderr).toMatch(/not empty/)
  })

  it('removes names, and gc keeps what names still reach', async () => {
    expect((await kiln('image', 'rm', 'e2e/again:1')).code).toBe(0)
    expect((await kiln('image', 'rm', 'e2e/again:1')).code).toBe(3)
    const gc = JSON.parse((await kiln('gc', '--grace', '0', '--json')).stdout) as { removed: unknown[], missing: unknown[] }
    expect(gc.missing).toEqual([])
    const inspect = await kiln('image', 'inspect', 'e2e/busybox:base')
    expect(inspect.code).toBe(0)
    expect((await kiln('image', 'unpack', 'e2e/busybox:base', join(work, 'after-gc'))).code).toBe(0)
  })
})

function snapshot (dir: string): string[] {
  const out: string[] = []
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      out.push(p)
      if (e.isDirectory()) walk(p)
    }
  }
  walk(dir)
  return out.sort()
}

describe('kiln image unpack of hostile layers', () => {
  /** `error`: the unpack is refused with it; `inside`: it succeeds and the file the layer aimed out lands at this path in the target (links resolve inside the root). */
  const cases: Array<{ name: string, layers: () => Promise<Buffer[]>, error?: RegExp, inside?: string }> = [
    { name: 'path traversal', layers: async () => [await buildTarGz([{ name: '../../escaped.txt', body: 'x' }])], error: /escape|outside|\.\./i },
    { name: 'symlink then write through it', layers: async () => [await buildTarGz([{ name: 'link', type: 'symlink', linkname: '../../' }, { name: 'link/escaped.txt', body: 'x' }])], inside: 'escaped.txt' },
    { name: 'symlink in one layer, write through it in the next', layers: async () => [await buildTarGz([{ name: 'out', type: 'symlink', linkname: '/..' + '/'.repeat(1) + '..' }]), await buildTarGz([{ name: 'out/escaped.txt', body: 'x' }])], inside: 'escaped.txt' },
    { name: 'hardlink to a file outside', layers: async () => [await buildTarGz([{ name: 'hl', type: 'link', linkname: '../../etc/hostname' }])], error: /hardlink|outside|escape|link/i },
    { name: 'truncated gzip', layers: async () => { const gz = await buildTarGz([{ name: 'a.txt', body: 'a'.repeat(100_000) }]); return [gz.subarray(0, gz.length - 40)] }, error: /truncated|unexpected end|gzip|incomplete/i },
    { name: 'huge pax header', layers: async () => { const { gzipSync } = await import('node:zlib'); return [gzipSync(Buffer.concat([rawHeader('PaxHeaders/x', 'x', 64 * 1024 * 1024), Buffer.alloc(512)]))] }, error: /pax|header|large|limit/i }
  ]

  for (const c of cases) {
    it(`${c.inside === undefined ? 'refuses' : 'keeps inside the target'} ${c.name} and writes nothing outside the target`, async () => {
      const base = mkdtempSync(join(tmpdir(), 'kiln-hostile-'))
      try {
        const layout = join(base, 'layout')
        writeLayout(layout, await c.layers())
        const arena = join(base, 'arena')
        mkdirSync(join(arena, 'a', 'b'), { recursive: true })
        writeFileSync(join(arena, 'sentinel'), 'keep')
        const target = join(arena, 'a', 'b', 'target')
        const before = snapshot(base).filter(p => !p.startsWith(layout) && !p.startsWith(target))
        const d = join(base, 'data')
        expect((await runKiln(['--data-dir', d, 'image', 'import', `oci:${layout}:evil`, '-t', 'evil/x:1'])).code).toBe(0)
        const r = await runKiln(['--data-dir', d, 'image', 'unpack', 'evil/x:1', target])
        if (c.inside !== undefined) {
          expect(r.code, r.stderr).toBe(0)
          expect(readFileSync(join(target, c.inside), 'utf8')).toBe('x')
        } else {
          expect(r.code).not.toBe(0)
          expect(r.stderr).toMatch(/^kiln: error: /m)
          expect(r.stderr, r.stderr).toMatch(c.error as RegExp)
        }
        const after = snapshot(base).filter(p => !p.startsWith(layout) && !p.startsWith(target) && !p.startsWith(d))
        expect(after).toEqual(before.filter(p => !p.startsWith(d)))
        expect(readFileSync(join(arena, 'sentinel'), 'utf8')).toBe('keep')
        expect(existsSync(join(base, 'escaped.txt'))).toBe(false)
        expect(existsSync(join(arena, 'escaped.txt'))).toBe(false)
        expect(existsSync(join(arena, 'a', 'escaped.txt'))).toBe(false)
      } finally {
        rmSync(base, { recursive: true, force: true })
      }
    })
  }

  it('an import of a manifest that is not JSON fails clearly and names nothing', async () => {
    const base = mkdtempSync(join(tmpdir(), 'kiln-hostile-'))
    try {
      const layout = join(base, 'layout')
      mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true })
      writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
      const bad = Buffer.from('this is not json')
      const digest = sha256Digest(bad)
      writeFileSync(join(layout, 'blobs', 'sha256', digest.slice(7)), bad)
      writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: bad.length }] }))
      const d = join(base, 'data')
      const r = await runKiln(['--data-dir', d, 'image', 'import', `oci:${layout}`, '-t', 'bad/x:1'])
      expect(r.code).toBe(4)
      expect(r.stderr).toMatch(/not JSON/)
      const ls = await runKiln(['--data-dir', d, 'image', 'ls', '--json'])
      expect(JSON.parse(ls.stdout)).toEqual([])
      expect(readdirSync(join(d, 'store', 'blobs', 'sha256'))).toEqual([])
    } finally {
      rmSync(base, { recursive: true, force: true })
    }
  })
})
