/**
 * Step behaviour that only shows end to end, as an unprivileged user: the
 * network a RUN gets (Docker's model: with --network=default every step
 * but those saying --network=none, else none, and a hint naming the flag
 * when an offline step wanted it), the history and
 * progress lines carrying the instruction text, and ADD of a local tar.
 */
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeBusyboxBase } from '../../helpers/busybox-base.ts'
import { haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { makeContext } from '../../helpers/context.ts'

describe.skipIf(!haveTools('setpriv', 'umoci', 'busybox', 'bwrap'))('kiln build steps', () => {
  let u: Unprivileged
  let layout: string
  let server: ChildProcess
  let port: number
  let log: string
  const connections = (): number => existsSync(log) ? readFileSync(log, 'utf8').length : 0

  const context = (dockerfile: string, files: Record<string, string> = {}): string => makeContext(u, { Dockerfile: dockerfile, ...files }, { LAYOUT: layout, PORT: String(port) })

  /** The image config's history of an image written to an OCI layout. */
  const history = (out: string): string[] => {
    const blob = (digest: string): { [k: string]: unknown } => JSON.parse(readFileSync(join(out, 'blobs/sha256', digest.slice(7)), 'utf8'))
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
    const manifest = blob(index.manifests[0]?.digest ?? '') as { config: { digest: string } }
    const config = blob(manifest.config.digest) as { history: Array<{ created_by?: string }> }
    return config.history.map(h => h.created_by ?? '')
  }

  beforeAll(async () => {
    u = makeUnprivileged()
    layout = makeBusyboxBase(u)
    // In its own process: the kiln runs below are synchronous and would starve a server in this one.
    log = join(u.work, 'connections.log')
    server = spawn(process.execPath, ['-e', `const fs = require('node:fs'); const s = require('node:net').createServer(c => { fs.appendFileSync(${JSON.stringify(log)}, 'x'); c.end('hello\\n') }); s.listen(0, '127.0.0.1', () => { process.stdout.write(String(s.address().port) + '\\n') })`], { stdio: ['ignore', 'pipe', 'inherit'] })
    port = await new Promise<number>((resolve, reject) => {
      server.stdout?.once('data', (d: Buffer) => { resolve(Number(d.toString().trim())) })
      server.once('exit', code => { reject(new Error(`connection counter exited with ${String(code)}`)) })
    })
  }, 120_000)
  afterAll(() => {
    server?.kill()
    u?.cleanup()
  })

  it('gives no step the network by default or with --network=none, and says which flag to use when a step wanted it', () => {
    const before = connections()
    for (const flags of [[], ['--network=none']]) {
      const r = u.kiln(['build', '--no-cache', ...flags, context('FROM oci:LAYOUT:base\nRUN nc 127.0.0.1 PORT </dev/null; echo "nc exit $?"\nRUN --network=default nc 127.0.0.1 PORT </dev/null; echo "nc exit $?"\n')], { env: { KILN_SANDBOX: 'bwrap' } })
      expect(r.status, r.stderr).toBe(0)
      expect(r.stderr.match(/nc exit [1-9]/g)).toHaveLength(2)
    }
    expect(connections()).toBe(before)
    const offline = u.kiln(['build', context('FROM oci:LAYOUT:base\nRUN wget -q -O /x http://kiln-no-such-host.invalid/\n')], { env: { KILN_SANDBOX: 'bwrap' } })
    expect(offline.status, offline.stderr).toBe(5)
    expect(offline.stderr).toMatch(/Dockerfile:2: RUN failed with exit code 1: .*\(the step ran without network: kiln build --network=default gives RUN steps the network/)
  })

  it('with --network (bare, or =default) gives every step the network except those that say --network=none', () => {
    for (const flag of ['--network', '--network=default']) {
      const before = connections()
      const r = u.kiln(['build', '--no-cache', flag, context(`FROM oci:LAYOUT:base\nRUN nc 127.0.0.1 PORT </dev/null > /reply\nRUN --network=host nc 127.0.0.1 PORT </dev/null > /reply2\nRUN --network=none nc 127.0.0.1 PORT </dev/null; echo "nc exit $?"\n`)], { env: { KILN_SANDBOX: 'bwrap' } })
      expect(r.status, r.stderr).toBe(0)
      expect(r.stderr).toMatch(/nc exit [1-9]/)
      expect(connections()).toBe(before + 2)
    }
    const bad = u.kiln(['build', '--network=bridge', context('FROM oci:LAYOUT:base\nRUN true\n')])
    expect(bad.status).toBe(2)
    expect(bad.stderr).toMatch(/--network=bridge: expected default or none/)
  })

  it('extracts a local tar archive on ADD (plain or compressed, recognized by content), copies other files, and refuses one that climbs out', () => {
    const ctx = context('FROM oci:LAYOUT:base\nADD files.tgz /opt/app/\nADD plain.gz notes.tar /opt/\nCOPY files.tgz /opt/copied.tgz\nRUN cat /opt/app/a /opt/app/sub/b /opt/notes.tar >&2 && test -f /opt/plain.gz && test -f /opt/copied.tgz && test ! -e /opt/app/files.tgz\n', { 'notes.tar': 'not a tar\n' })
    const src = join(u.work, 'archive-src')
    mkdirSync(join(src, 'sub'), { recursive: true })
    writeFileSync(join(src, 'a'), 'from a\n')
    writeFileSync(join(src, 'sub/b'), 'from b\n')
    execFileSync('tar', ['-czf', join(ctx, 'files.tgz'), '-C', src, '.'])
    writeFileSync(join(ctx, 'plain.gz'), gzipSync('just gzip'))
    u.give(ctx)
    const r = u.kiln(['build', ctx])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toContain('from a\nfrom b\nnot a tar\n')

    const bad = context('FROM oci:LAYOUT:base\nADD evil.tar /opt/\n')
    execFileSync('python3', ['-c', 'import io,sys,tarfile\nt=tarfile.open(sys.argv[1],"w")\ni=tarfile.TarInfo("../../escape")\ni.size=3\nt.addfile(i,io.BytesIO(b"bad"))\nt.close()', join(bad, 'evil.tar')])
    u.give(bad)
    const refused = u.kiln(['build', bad])
    expect(refused.status, refused.stderr).toBe(2)
    expect(refused.stderr).toMatch(/Dockerfile:2: ADD evil.tar: cannot extract the archive: .*escape/)
  })

  it('writes the instructions, not canonical JSON, into the history and the progress lines', () => {
    const out = join(u.work, 'out-history')
    const ctx = context('FROM oci:LAYOUT:base AS build\nRUN echo hi > /hi\nFROM oci:LAYOUT:base\nCOPY --from=build /hi /copied/\nCOPY notes.txt /data/\nENV A=1\nCMD ["cat", "/hi"]\n', { 'notes.txt': 'n\n' })
    const r = u.kiln(['build', '--output', `oci-layout:${out}`, ctx])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toContain('[1/5] RUN /bin/sh -c echo hi > /hi\n')
    expect(r.stdout).toContain('[2/5] COPY --from=build /hi /copied/\n')
    expect(history(out).slice(-4)).toEqual(['COPY --from=build /hi /copied/', 'COPY notes.txt /data/', 'ENV A=1', 'CMD ["cat" "/hi"]'])
  })
})
