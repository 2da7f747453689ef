/**
 * ADD from URLs and git, ONBUILD and COPY --parents/--exclude, end to end as
 * an unprivileged user on a busybox base (docs/building.md). The remotes are
 * on loopback: an HTTP server and `git daemon`, each in its own process (the
 * kiln runs are synchronous and would starve a server in this one). The
 * server logs every request with its status, so a test can tell a download
 * from a 304 from no request at all.
 */
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeBusyboxBase } from '../../helpers/busybox-base.ts'
import { haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { makeContext } from '../../helpers/context.ts'

/** Serves DIR/NAME with the ETag in DIR/NAME.etag, answers If-None-Match with 304; logs `STATUS PATH` lines. */
const HTTP_SERVER = `
const fs = require('node:fs'); const path = require('node:path')
const [dir, log] = process.argv.slice(1)
const s = require('node:http').createServer((req, res) => {
  const file = path.join(dir, path.basename(req.url))
  let status = 404
  if (fs.existsSync(file)) {
    const etag = fs.readFileSync(file + '.etag', 'utf8').trim()
    const headers = { etag, 'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT' }
    if (req.headers['if-none-match'] === etag) { status = 304; res.writeHead(304, headers); res.end() }
    else { status = 200; res.writeHead(200, headers); res.end(fs.readFileSync(file)) }
  } else { res.writeHead(404); res.end() }
  fs.appendFileSync(log, status + ' ' + req.url + '\\n')
})
s.listen(0, '127.0.0.1', () => { process.stdout.write(String(s.address().port) + '\\n') })
`

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => { resolve(typeof a === 'object' && a !== null ? a.port : 0) })
    }).once('error', reject)
  })
}

describe.skipIf(!haveTools('setpriv', 'umoci', 'busybox', 'bwrap', 'git'))('kiln build: remote and filtered sources, ONBUILD', () => {
  let u: Unprivileged
  let layout: string
  let files: string
  let log: string
  let http: ChildProcess
  let httpPort: number
  let gitd: ChildProcess
  let gitPort: number

  const context = (dockerfile: string, extra: Record<string, string> = {}): string =>
    makeContext(u, { Dockerfile: dockerfile, ...extra }, { LAYOUT: layout, HTTP: `http://127.0.0.1:${httpPort}`, GIT: `git://127.0.0.1:${gitPort}` })
  const serve = (name: string, body: string, etag: string): void => {
    writeFileSync(join(files, name), body)
    writeFileSync(join(files, `${name}.etag`), `"${etag}"`)
  }
  const requests = (): string[] => existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(l => l !== '') : []
  const git = (...args: string[]): string => execFileSync('git', args, { encoding: 'utf8', env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } })

  /** Paths and modes in the last layer of the image written to an OCI layout. */
  const lastLayer = (out: string): Map<string, string> => {
    const blob = (digest: string): string => join(out, 'blobs/sha256', digest.slice(7))
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
    const manifest = JSON.parse(readFileSync(blob(index.manifests[0]?.digest ?? ''), 'utf8')) as { layers: Array<{ digest: string }> }
    const listing = execFileSync('tar', ['-tzvf', blob(manifest.layers.at(-1)?.digest ?? '')], { encoding: 'utf8' })
    return new Map(listing.split('\n').filter(l => l !== '').map(l => { const f = l.split(/\s+/); return [(f[5] ?? '').replace(/^\.?\//, '').replace(/\/$/, ''), f[0] ?? ''] }))
  }

  beforeAll(async () => {
    u = makeUnprivileged()
    layout = makeBusyboxBase(u)
    files = join(u.work, 'served')
    mkdirSync(files)
    log = join(u.work, 'requests.log')
    http = spawn(process.execPath, ['-e', HTTP_SERVER, files, log], { stdio: ['ignore', 'pipe', 'inherit'] })
    httpPort = await new Promise<number>((resolve, reject) => {
      http.stdout?.once('data', (d: Buffer) => { resolve(Number(d.toString().trim())) })
      http.once('exit', code => { reject(new Error(`http server exited with ${String(code)}`)) })
    })
    const repos = join(u.work, 'repos')
    const work = join(u.work, 'repo-work')
    mkdirSync(join(work, 'sub'), { recursive: true })
    git('init', '-q', '-b', 'main', work)
    writeFileSync(join(work, 'top.txt'), 'top\n')
    writeFileSync(join(work, 'sub/inner.txt'), 'inner v1\n')
    git('-C', work, 'add', '.')
    git('-C', work, 'commit', '-qm', 'one')
    git('clone', '-q', '--bare', work, join(repos, 'r.git'))
    gitPort = await freePort()
    gitd = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${repos}`, '--listen=127.0.0.1', `--port=${gitPort}`, repos], { stdio: 'ignore' })
    for (let i = 0; i < 50; i++) {
      try { git('ls-remote', `git://127.0.0.1:${gitPort}/r.git`); break } catch { await new Promise(resolve => setTimeout(resolve, 100)) }
    }
  }, 120_000)
  afterAll(() => {
    http?.kill()
    gitd?.kill()
    u?.cleanup()
  })

  it('refuses ADD <url> without --network, naming the flag, before any request', () => {
    serve('f.txt', 'one\n', 'e1')
    const r = u.kiln(['build', context('FROM oci:LAYOUT:base\nADD HTTP/f.txt /data/\n')])
    expect(r.status, r.stderr).toBe(2)
    expect(r.stderr).toMatch(/Dockerfile:2: ADD http:\/\/127\.0\.0\.1:\d+\/f\.txt fetches from the network, which this build does not allow: rerun with kiln build --network/)
    expect(requests()).toEqual([])
  })

  it('downloads ADD <url> as a 0600 file, hits the cache while the ETag holds, reruns when it changes', () => {
    serve('g.txt', 'first\n', 'g1')
    const ctx = context('FROM oci:LAYOUT:base\nADD HTTP/g.txt /data/\nRUN cat /data/g.txt >&2 && stat -c "mode %a" /data/g.txt >&2\n')
    const first = u.kiln(['build', '--network', ctx])
    expect(first.status, first.stderr).toBe(0)
    expect(first.stderr).toContain('first\nmode 600\n')
    const again = u.kiln(['build', '--network', ctx])
    expect(again.status, again.stderr).toBe(0)
    expect(again.stdout).toMatch(/2 steps \(2 cached\)/)
    expect(requests().filter(l => l.endsWith('/g.txt'))).toEqual(['200 /g.txt', '304 /g.txt'])
    serve('g.txt', 'second\n', 'g2')
    const changed = u.kiln(['build', '--network', ctx])
    expect(changed.status, changed.stderr).toBe(0)
    expect(changed.stderr).toContain('second\n')
    expect(changed.stdout).toMatch(/2 steps \(0 cached\)/)
  })

  it('checks --checksum, fails on a wrong one, and needs no request once the blob is stored', () => {
    const body = 'checked\n'
    serve('c.txt', body, 'c1')
    const sum = `sha256:${createHash('sha256').update(body).digest('hex')}`
    const wrong = u.kiln(['build', '--network', context(`FROM oci:LAYOUT:base\nADD --checksum=sha256:${'0'.repeat(64)} HTTP/c.txt /c.txt\n`)])
    expect(wrong.status, wrong.stderr).not.toBe(0)
    expect(wrong.stderr).toMatch(/Dockerfile:2: ADD http:\S+\/c\.txt: the download does not match --checksum/)
    const ctx = context(`FROM oci:LAYOUT:base\nADD --checksum=${sum} HTTP/c.txt /c.txt\nRUN cat /c.txt >&2\n`)
    const ok = u.kiln(['build', '--network', ctx])
    expect(ok.status, ok.stderr).toBe(0)
    expect(ok.stderr).toContain(body)
    const before = requests().length
    const again = u.kiln(['build', '--network', ctx])
    expect(again.status, again.stderr).toBe(0)
    expect(again.stdout).toMatch(/2 steps \(2 cached\)/)
    expect(requests().length).toBe(before)
  })

  it('adds a git tree at a ref and subdir without .git (or with --keep-git-dir), keyed by the commit', () => {
    const ctx = context('FROM oci:LAYOUT:base\nADD GIT/r.git#main:sub /src/\nADD --keep-git-dir GIT/r.git /whole/\nRUN cat /src/inner.txt >&2 && test ! -e /src/.git && test ! -e /src/top.txt && test -f /whole/top.txt && test -d /whole/.git\n')
    const first = u.kiln(['build', '--network', ctx])
    expect(first.status, first.stderr).toBe(0)
    expect(first.stderr).toContain('inner v1\n')
    const again = u.kiln(['build', '--network', ctx])
    expect(again.stdout).toMatch(/3 steps \(3 cached\)/)
    const work = join(u.work, 'repo-work')
    writeFileSync(join(work, 'sub/inner.txt'), 'inner v2\n')
    git('-C', work, 'commit', '-qam', 'two')
    git('-C', work, 'push', '-q', join(u.work, 'repos/r.git'), 'main')
    const moved = u.kiln(['build', '--network', ctx])
    expect(moved.status, moved.stderr).toBe(0)
    expect(moved.stderr).toContain('inner v2\n')
    const missing = u.kiln(['build', '--network', context('FROM oci:LAYOUT:base\nADD GIT/r.git#nope /x/\n')])
    expect(missing.status).not.toBe(0)
    expect(missing.stderr).toMatch(/Dockerfile:2: ADD git:\S+: the repository has no ref nope/)
  })

  it('runs a base image\'s ONBUILD triggers right after FROM in the child build, and not in the grandchild', () => {
    const parent = u.kiln(['build', '-t', 'e2e/onbuild:1', context('FROM oci:LAYOUT:base\nONBUILD COPY note.txt /from-trigger/\nONBUILD RUN echo "trigger ran" >&2\n')])
    expect(parent.status, parent.stderr).toBe(0)
    const child = u.kiln(['build', '-t', 'e2e/onbuild-child:1', context('FROM e2e/onbuild:1\nRUN cat /from-trigger/note.txt >&2\n', { 'note.txt': 'child context\n' })])
    expect(child.status, child.stderr).toBe(0)
    expect(child.stderr).toContain('trigger ran\n')
    expect(child.stderr).toContain('child context\n')
    const grandchild = u.kiln(['build', context('FROM e2e/onbuild-child:1\nRUN echo grandchild >&2\n')])
    expect(grandchild.status, grandchild.stderr).toBe(0)
    expect(grandchild.stderr).not.toContain('trigger ran')
    const broken = u.kiln(['build', '-t', 'e2e/onbuild-bad:1', context('FROM oci:LAYOUT:base\nONBUILD COPY only-one-arg\n')])
    expect(broken.status, broken.stderr).toBe(0)
    const failed = u.kiln(['build', context('FROM e2e/onbuild-bad:1\n')])
    expect(failed.status).toBe(2)
    expect(failed.stderr).toMatch(/ONBUILD trigger of e2e\/onbuild-bad:1:1: COPY: requires at least two arguments/)
  })

  it('keeps parent dirs with COPY --parents (after a /./ pivot) and leaves out --exclude matches, in the layer', () => {
    const out = join(u.work, 'out-parents')
    const ctx = context('FROM oci:LAYOUT:base\nCOPY --parents --exclude=*.log a/./b/ c/d.txt /dst/\n', { 'a/b/keep.txt': 'k\n', 'a/b/drop.log': 'd\n', 'a/b/e/deep.txt': 'x\n', 'c/d.txt': 'd\n' })
    const r = u.kiln(['build', '--output', `oci-layout:${out}`, ctx])
    expect(r.status, r.stderr).toBe(0)
    const paths = [...lastLayer(out).keys()].sort()
    expect(paths).toEqual(['dst', 'dst/b', 'dst/b/e', 'dst/b/e/deep.txt', 'dst/b/keep.txt', 'dst/c', 'dst/c/d.txt'])
  })
})
