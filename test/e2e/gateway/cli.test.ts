/**
 * `kiln gateway` as a real process: HTTPS from an openssl certificate, a users
 * file with a hash from `kiln gateway hash-password`, anonymous read off;
 * skopeo pushes and pulls through it. Also the refusal of plain HTTP on a
 * non-loopback address.
 */
import { execFile, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { haveTools } from '../../helpers/tools.ts'

const run = promisify(execFile)
const ROOT = resolve(import.meta.dirname, '../../..')
const NODE = join(ROOT, 'node_modules', '.bin', 'node')
const KILN = join(ROOT, 'src', 'cli', 'kiln.mjs')
const MAKE_BASE = resolve(ROOT, '../shared/bench/make-busybox-base.sh')

describe.skipIf(!haveTools('openssl', 'skopeo', 'umoci', 'busybox'))('kiln gateway (process, HTTPS, users file)', () => {
  let dir: string
  let env: NodeJS.ProcessEnv
  let child: ChildProcess | undefined
  let hostPort: string
  let cert: Buffer

  const kiln = (args: string[], input?: string): Promise<{ stdout: string, stderr: string }> => new Promise((resolve, reject) => {
    const p = execFile(NODE, [KILN, '--data-dir', join(dir, 'data'), ...args], { env, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err !== null) reject(Object.assign(err, { stdout, stderr })); else resolve({ stdout, stderr })
    })
    p.stdin?.end(input ?? '')
  })

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-gw-cli-'))
    env = { ...process.env, HOME: dir, XDG_RUNTIME_DIR: dir, XDG_CONFIG_HOME: join(dir, 'config'), REGISTRY_AUTH_FILE: join(dir, 'auth.json') }
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { env })
    cert = await readFile(join(dir, 'cert.pem'))
    const hash = (await kiln(['gateway', 'hash-password'], 'hpc-pass\n')).stdout.trim()
    await writeFile(join(dir, 'users.yaml'), `users:\n  - name: hpc\n    passwordHash: "${hash}"\n    access:\n      - repository: "hpc/**"\n        allow: [read, write]\n`)
    await run('sh', [MAKE_BASE, join(dir, 'layout'), 'base'], { env })

    child = spawn(NODE, [KILN, '--data-dir', join(dir, 'data'), 'gateway', '--listen', '127.0.0.1:0', '--tls-cert', join(dir, 'cert.pem'),
      '--tls-key', join(dir, 'key.pem'), '--users', join(dir, 'users.yaml'), '--no-anonymous-read', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    // --json prints one (possibly pretty-printed) JSON document once listening.
    const { url } = await new Promise<{ url: string }>((resolve, reject) => {
      let text = ''
      const lines = createInterface({ input: child!.stdout! })
      lines.on('line', line => {
        text += line
        try { resolve(JSON.parse(text) as { url: string }) } catch { /* not complete yet */ }
      })
      child!.once('exit', code => { reject(new Error(`kiln gateway exited ${code}`)) })
    })
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    hostPort = url.slice('https://'.length)
  })

  afterAll(async () => {
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise(resolve => child!.once('exit', resolve))
      child.kill('SIGTERM')
      await exited
    }
    await rm(dir, { recursive: true, force: true })
  })

  it('serves HTTPS with a Bearer challenge', async () => {
    const res = await new Promise<{ status: number, challenge: string | undefined }>((resolve, reject) => {
      const req = request(`https://${hostPort}/v2/`, { ca: cert }, r => { r.resume(); resolve({ status: r.statusCode ?? 0, challenge: r.headers['www-authenticate'] }) })
      req.on('error', reject)
      req.end()
    })
    expect(res.status).toBe(401)
    expect(res.challenge).toBe(`Bearer realm="https://${hostPort}/token",service="kiln-gateway"`)
  })

  it('takes a push from skopeo with the user\'s credentials and refuses anonymous pulls', async () => {
    const dest = `docker://${hostPort}/hpc/busybox:v1`
    await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', 'hpc:hpc-pass', `oci:${join(dir, 'layout')}:base`, dest], { env, timeout: 60_000 })
    await expect(run('skopeo', ['inspect', '--tls-verify=false', dest], { env })).rejects.toThrow()
    const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', '--creds', 'hpc:hpc-pass', dest], { env })
    expect((JSON.parse(stdout) as { Layers: string[] }).Layers).toHaveLength(1)
  })

  it('stops cleanly on SIGTERM', async () => {
    const exited = new Promise<number | null>(resolve => child!.once('exit', resolve))
    child!.kill('SIGTERM')
    expect(await exited).toBe(0)
  })

  it('refuses plain HTTP on a non-loopback address', async () => {
    const err = await kiln(['gateway', '--listen', '0.0.0.0:0']).catch((e: { code: number, stderr: string }) => e)
    expect(err).toMatchObject({ code: 2 })
    expect((err as { stderr: string }).stderr).toMatch(/refusing plain HTTP/)
  })
})
