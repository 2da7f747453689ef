/**
 * RUN --mount end to end, as an unprivileged user on a busybox base: a
 * cache dir that outlives the build and never enters a layer, binds from
 * the context and from a stage (read-only, or rw with the writes thrown
 * away), tmpfs, and secrets (file and env) whose value appears in no
 * layer, no output of kiln and no step key.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeBusyboxBase } from '../../helpers/busybox-base.ts'
import { haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { makeContext } from '../../helpers/context.ts'

describe.skipIf(!haveTools('setpriv', 'umoci', 'busybox', 'bwrap', 'tar'))('kiln build RUN --mount', () => {
  let u: Unprivileged
  let layout: string
  let n = 0

  const context = (dockerfile: string, files: Record<string, string> = {}): string => makeContext(u, { Dockerfile: dockerfile, ...files }, { LAYOUT: layout })

  /** The image's layers in an OCI layout, uncompressed. */
  const layers = (out: string): Buffer[] => {
    const blob = (digest: string): Buffer => readFileSync(join(out, 'blobs/sha256', digest.slice(7)))
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
    const manifest = JSON.parse(blob(index.manifests[0]?.digest ?? '').toString()) as { layers: Array<{ digest: string }> }
    return manifest.layers.map(l => gunzipSync(blob(l.digest)))
  }

  /** Every path in the image's layers that the base does not have. */
  const addedPaths = (out: string): string[] => layers(out).slice(1).flatMap(tar => {
    const file = join(u.work, `layer-${++n}.tar`)
    writeFileSync(file, tar)
    return execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).split('\n').filter(l => l !== '')
  })

  beforeAll(() => {
    u = makeUnprivileged()
    layout = makeBusyboxBase(u)
  }, 120_000)
  afterAll(() => { u?.cleanup() })

  it('keeps a cache mount between builds, out of every layer, counted by kiln store df', () => {
    const out = join(u.work, 'out-cache')
    const first = u.kiln(['build', '--output', `oci-layout:${out}`, context('FROM oci:LAYOUT:base\nRUN --mount=type=cache,target=/var/cache/app echo one >> /var/cache/app/log && echo made > /made\n')])
    expect(first.status, first.stderr).toBe(0)
    expect(addedPaths(out).filter(p => p.includes('cache'))).toEqual([])
    expect(addedPaths(out)).toContain('made')
    const second = u.kiln(['build', context('FROM oci:LAYOUT:base\nRUN --mount=type=cache,target=/c,id=/var/cache/app cat /c/log >&2\n')])
    expect(second.status, second.stderr).toBe(0)
    expect(second.stderr).toContain('one\n')
    const df = u.kiln(['store', 'df'])
    expect(df.stdout).toMatch(/1 RUN cache mount\(s\)/)
  })

  it('binds the context and a stage read-only, throws rw writes away, and rebuilds when the bound files change', () => {
    const dockerfile = 'FROM oci:LAYOUT:base AS tools\nRUN mkdir /out && echo tool > /out/t\nFROM oci:LAYOUT:base\n' +
      'RUN --mount=target=/src --mount=from=tools,source=/out,target=/tools --mount=type=bind,source=sub,target=/w,rw cat /src/a /tools/t /w/b >&2 && { ! touch /src/new 2>/dev/null; } && echo scribble > /w/b && echo ok > /done\n' +
      'RUN test ! -e /src && test ! -e /tools && test ! -e /w\n'
    const ctx = context(dockerfile, { a: 'from context\n', 'sub/b': 'from sub\n' })
    const r = u.kiln(['build', ctx])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toContain('from context\ntool\nfrom sub\n')
    expect(readFileSync(join(ctx, 'sub/b'), 'utf8')).toBe('from sub\n')
    const again = u.kiln(['build', ctx])
    expect(again.stdout).toMatch(/cached/)
    writeFileSync(join(ctx, 'a'), 'changed\n')
    const changed = u.kiln(['build', ctx])
    expect(changed.status, changed.stderr).toBe(0)
    expect(changed.stderr).toContain('changed\n')
  })

  it('gives a tmpfs that leaves nothing behind', () => {
    const out = join(u.work, 'out-tmpfs')
    const r = u.kiln(['build', '--output', `oci-layout:${out}`, context('FROM oci:LAYOUT:base\nRUN --mount=type=tmpfs,target=/scratch,size=1m echo x > /scratch/x && grep -q " /scratch tmpfs" /proc/mounts && echo ok > /ok\n')])
    expect(r.status, r.stderr).toBe(0)
    expect(addedPaths(out).filter(p => p.includes('scratch'))).toEqual([])
  })

  it('gives secrets as a file and in the environment, in no layer, no output, no step key', () => {
    const value = `s3cr3t-${Date.now()}`
    const file = join(u.work, 'secret.txt')
    writeFileSync(file, value)
    u.give(file)
    const dockerfile = 'FROM oci:LAYOUT:base\nRUN --mount=type=secret,id=tok --mount=type=secret,id=api,env=API_KEY test "$(cat /run/secrets/tok)" = "$API_KEY" && test -n "$API_KEY" && echo used > /used\n'
    const ctx = context(dockerfile)
    const out = join(u.work, 'out-secret')
    const r = u.kiln(['build', '--secret', `id=tok,src=${file}`, '--secret', 'id=api,env=THE_KEY', '--output', `oci-layout:${out}`, ctx], { env: { THE_KEY: value } })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout + r.stderr).not.toContain(value)
    for (const tar of layers(out)) expect(tar.includes(value)).toBe(false)
    expect(addedPaths(out).filter(p => p.includes('run'))).toEqual([])
    const data = readdirSync(u.dataDir, { recursive: true, withFileTypes: true }).filter(e => e.isFile())
    for (const e of data) expect(readFileSync(join(e.parentPath, e.name)).includes(value), join(e.parentPath, e.name)).toBe(false)
    // Another value: the same key, as BuildKit (a secret is not a cache input).
    writeFileSync(file, 'other')
    const again = u.kiln(['build', '--secret', `id=tok,src=${file}`, '--secret', 'id=api,env=THE_KEY', ctx], { env: { THE_KEY: 'other' } })
    expect(again.status, again.stderr).toBe(0)
    expect(again.stdout).toMatch(/cached/)
  })

  it('fails a step whose required secret the build lacks, naming the flag', () => {
    const r = u.kiln(['build', context('FROM oci:LAYOUT:base\nRUN --mount=type=secret,id=npmrc,required true\n')])
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/Dockerfile:2: RUN --mount=type=secret,id=npmrc: the build has no secret 'npmrc'/)
  })
})
