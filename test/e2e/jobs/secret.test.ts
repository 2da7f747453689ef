/**
 * `kiln submit --secret` end to end, every party its own process, as uid
 * 65534: one institution certifies an agent as builder and a requester as
 * requester. The job's RUN steps read the secret through
 * `--mount=type=secret` (as a file and as a variable) and write only its
 * hash and length into the image. The secret's bytes (and their base64
 * forms) must then be nowhere: not in any layer or the config of the
 * result, not in any file of the agent's or the requester's data dir
 * (the sqlite databases included), not in any process output.
 */
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeBusyboxBase } from '../../helpers/busybox-base.ts'
import { addressOf, kilnProcs } from '../../helpers/kiln-procs.ts'
import type { KilnProcs, Proc } from '../../helpers/kiln-procs.ts'
import { haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import { makeContext } from '../../helpers/context.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'

const SECRET = `kiln-e2e-secret-${randomBytes(12).toString('hex')}`
const forms = [SECRET, Buffer.from(SECRET).toString('base64'), Buffer.from(SECRET).toString('base64url')].map(s => Buffer.from(s.slice(0, 24)))

/** Every regular file under `dir` whose bytes hold the secret in any of its forms. */
function filesHolding (dir: string): string[] {
  const hits: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue
    const path = join(entry.parentPath, entry.name)
    const bytes = readFileSync(path)
    if (forms.some(f => bytes.includes(f))) hits.push(path)
  }
  return hits
}

describe.skipIf(!haveTools('setpriv', 'umoci', 'busybox', 'tar'))('kiln submit --secret', () => {
  let u: Unprivileged
  let k: KilnProcs
  const d = { root: '', agent: '', requester: '' }
  const kiln = (dataDir: string, args: string[]): string => {
    const r = u.kiln(args, { dataDir })
    if (r.status !== 0) throw new Error(`kiln ${args.join(' ')} exited ${r.status}: ${r.stderr}`)
    return r.stdout
  }
  const peerId = (dataDir: string): string => (JSON.parse(kiln(dataDir, ['key', 'show', '--json'])) as { peerId: string }).peerId

  beforeAll(() => {
    u = makeUnprivileged()
    k = kilnProcs(u)
    for (const name of ['root', 'agent', 'requester'] as const) {
      d[name] = join(u.work, name)
      mkdirSync(d[name])
    }
    const layout = makeBusyboxBase(u, join(u.work, 'busybox'))
    u.give(u.work)
    const pub = (JSON.parse(kiln(d.root, ['trust', 'init-root', '--institution', 'uni-a', '--json'])) as { publicPath: string }).publicPath
    const agentCert = join(u.work, 'agent.cert.json')
    kiln(d.root, ['trust', 'issue', '--role', 'builder', peerId(d.agent), '-o', agentCert])
    kiln(d.agent, ['trust', 'add-cert', agentCert])
    kiln(d.agent, ['trust', 'add-root', pub, '--roles', 'requester'])
    kiln(d.agent, ['image', 'import', `oci:${layout}:base`, '-t', 'kiln-test/busybox:base'])
    const reqCert = join(u.work, 'requester.cert.json')
    kiln(d.root, ['trust', 'issue', '--role', 'requester', peerId(d.requester), '-o', reqCert])
    kiln(d.requester, ['trust', 'add-cert', reqCert])
    kiln(d.requester, ['trust', 'add-root', pub, '--roles', 'builder'])
  }, 240_000)

  afterAll(async () => {
    await k?.stopAll()
    u?.cleanup()
  }, 60_000)

  it('reaches the RUN steps of the awarded agent only, and is in no layer, no data dir and no output', { timeout: 300_000 }, async () => {
    const ctx = makeContext(u, {
      Dockerfile: [
        'FROM kiln-test/busybox:base',
        'RUN --mount=type=secret,id=token,required sha256sum /run/secrets/token | cut -d" " -f1 > /token.sha256 && ls -l /run/secrets/token > /token.ls',
        'RUN --mount=type=secret,id=token,env=TOKEN,required sh -c \'printf %s "$TOKEN" | wc -c > /token.len\'',
        ''
      ].join('\n')
    })
    const secretFile = join(u.work, 'token.txt')
    writeFileSync(secretFile, SECRET, { mode: 0o600 })
    u.give(secretFile)

    // Without the secret the recipe is refused before anything is signed, as kiln build refuses at the step.
    const missing = await k.exec(['submit', '--platform', 'linux/amd64', '--no-mdns', ctx], d.requester)
    expect(missing.code, missing.stderr).toBe(2)
    expect(missing.stderr).toMatch(/RUN --mount=type=secret,id=token: the build has no secret 'token'/)
    expect(missing.stderr).toMatch(/--secret id=token,src=FILE/)

    const agent: Proc = k.start(['agent', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--platform', 'linux/amd64', '--log-level', 'info'], d.agent)
    const addr = await addressOf(agent)
    const submit = k.start(['submit', '--platform', 'linux/amd64', '--secret', `id=token,src=${secretFile}`, '--secret', 'id=unused,env=HOME',
      '-t', 'demo/secret:1', '--no-publish', '--bootstrap', addr, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--offer-window', '3s', '--timeout', '4m', '--json', ctx], d.requester)
    const code = await submit.exited
    expect(code, `${submit.stderr()}\n--- agent:\n${agent.stderr()}`).toBe(0)
    expect(submit.stderr()).toMatch(/--secret id=unused: no RUN step of the recipe mounts it; it is not sent/)
    const summary = JSON.parse(submit.stdout()) as { digest: string, platforms: Array<{ builders: string[] }> }
    expect(summary.platforms[0]?.builders).toEqual([peerId(d.agent)])

    // The steps saw the value: its hash and length are in the image, read back from the layers.
    const blob = (digest: string): string => join(d.requester, 'store', 'blobs', 'sha256', digest.slice(7))
    const manifest = JSON.parse(readFileSync(blob(summary.digest), 'utf8')) as { config: { digest: string }, layers: Array<{ digest: string }> }
    const read = (file: string): string => {
      for (const l of manifest.layers) {
        const names = execFileSync('tar', ['-tf', blob(l.digest)], { encoding: 'utf8' }).split('\n').map(n => n.replace(/^\.?\//, ''))
        if (names.includes(file)) return execFileSync('tar', ['-xOf', blob(l.digest), '--wildcards', `*${file}`], { encoding: 'utf8' })
      }
      throw new Error(`${file} is in no layer`)
    }
    expect(read('token.sha256').trim()).toBe(createHash('sha256').update(SECRET).digest('hex'))
    expect(read('token.len').trim()).toBe(String(SECRET.length))
    // Mounted read-only with mode 0400, as kiln build mounts it.
    expect(read('token.ls')).toMatch(/^-r-------- /)
    // Neither the mount point nor the value went into a layer.
    for (const l of manifest.layers) {
      const names = execFileSync('tar', ['-tf', blob(l.digest)], { encoding: 'utf8' })
      expect(names).not.toMatch(/run\/secrets\/token/)
      const content = execFileSync('tar', ['-xOf', blob(l.digest)], { maxBuffer: 1 << 28 })
      expect(forms.some(f => content.includes(f))).toBe(false)
    }
    expect(forms.some(f => readFileSync(blob(manifest.config.digest)).includes(f))).toBe(false)

    await k.stopAll()
    // After the agent stopped (its database closed, its WAL folded in): no file of either data dir holds it.
    expect(readdirSync(d.agent, { recursive: true }).some(n => String(n).endsWith('kiln.db'))).toBe(true)
    // The scan finds what is there: the secret's own file.
    expect(filesHolding(u.work)).toContain(secretFile)
    expect(filesHolding(d.agent)).toEqual([])
    expect(filesHolding(d.requester)).toEqual([])
    for (const text of [agent.stdout(), agent.stderr(), submit.stdout(), submit.stderr()]) {
      expect(forms.some(f => text.includes(f.toString()))).toBe(false)
    }
  })
})
