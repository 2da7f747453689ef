/**
 * Two separate kiln processes on loopback: an agent holds an image, another
 * data dir pulls it by digest through the peer network, and the result is an
 * ordinary local image that skopeo accepts once exported.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KILN, REPO_ROOT, runKiln } from '../../helpers/cli.ts'
import { haveTools } from '../../helpers/tools.ts'

const MAKE_BASE = join(REPO_ROOT, '..', 'shared', 'bench', 'make-busybox-base.sh')

describe.skipIf(!haveTools('skopeo', 'umoci', 'busybox'))('kiln pull between two processes', () => {
  const work = mkdtempSync(join(tmpdir(), 'kiln-net-e2e-'))
  const a = join(work, 'a')
  const b = join(work, 'b')
  let agent: ChildProcess | undefined
  let addr = ''
  let digest = ''

  beforeAll(async () => {
    execFileSync('sh', [MAKE_BASE, join(work, 'layout'), 'base'], { stdio: 'ignore' })
    const imported = await runKiln(['--data-dir', a, 'image', 'import', `oci:${join(work, 'layout')}:base`, '-t', 'net/busybox:base', '--json'])
    expect(imported.code).toBe(0)
    digest = (JSON.parse(imported.stdout) as Array<{ digest: string }>)[0]?.digest ?? ''
    agent = spawn(process.execPath, [KILN, '--data-dir', a, '--log-level', 'warn', 'agent', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--no-jobs'], { stdio: ['ignore', 'pipe', 'pipe'] })
    const proc = agent
    addr = await new Promise<string>((resolve, reject) => {
      let out = ''
      const timer = setTimeout(() => { reject(new Error(`agent did not start: ${out}`)) }, 60_000)
      proc.stdout?.on('data', (d: Buffer) => {
        out += d.toString()
        const m = /^listening: (\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+)$/m.exec(out)
        if (m !== null) { clearTimeout(timer); resolve(m[1] as string) }
      })
      proc.once('exit', code => { clearTimeout(timer); reject(new Error(`agent exited with ${code}`)) })
    })
  }, 120_000)

  afterAll(async () => {
    if (agent !== undefined && agent.exitCode === null) {
      const exited = new Promise(resolve => agent?.once('exit', resolve))
      agent.kill('SIGTERM')
      await exited
    }
    rmSync(work, { recursive: true, force: true })
  })

  it('pulls an image only the agent has, verified, and skopeo accepts the export', async () => {
    const pulled = await runKiln(['--data-dir', b, 'pull', `net/busybox:base@${digest}`, '--bootstrap', addr, '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--json', '--progress=json'], { timeoutMs: 120_000 })
    expect(pulled.stderr).not.toMatch(/error/i)
    expect(pulled.code).toBe(0)
    const summary = JSON.parse(pulled.stdout) as { digest: string, name: string, blobs: number, size: number, fetched: number, peers: string[], banned: string[] }
    expect(summary).toMatchObject({ digest, name: 'net/busybox:base', banned: [] })
    expect(summary.blobs).toBeGreaterThanOrEqual(3)
    expect(summary.fetched).toBe(summary.size)
    expect(summary.peers).toHaveLength(1)
    // --progress=json: stderr is all events (docs/cli.md), one done per blob fetched, adding up to the bytes pulled.
    const events = pulled.stderr.trimEnd().split('\n').map(l => JSON.parse(l) as { type: string, phase?: string, id?: string, bytes?: number })
    const done = events.filter(e => e.type === 'done' && e.phase === 'pull')
    expect(done).toHaveLength(summary.blobs)
    expect(new Set(done.map(e => e.id)).size).toBe(summary.blobs)
    expect(done.reduce((n, e) => n + (e.bytes ?? 0), 0)).toBe(summary.size)
    expect(events.at(-1)).toMatchObject({ type: 'summary', tasks: summary.blobs, bytes: summary.size })
    const inspect = JSON.parse((await runKiln(['--data-dir', b, 'image', 'inspect', 'net/busybox:base', '--json'])).stdout) as { digest: string, complete: boolean }
    expect(inspect).toMatchObject({ digest, complete: true })
    const out = join(work, 'export')
    expect((await runKiln(['--data-dir', b, 'image', 'export', 'net/busybox:base', out])).code).toBe(0)
    const info = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${out}:base`], { encoding: 'utf8' })) as { Digest: string }
    expect(info.Digest).toBe(digest)
    expect(JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')).manifests[0].digest).toBe(digest)
  }, 150_000)

  it('a digest nobody has fails with the network exit code, and stores nothing', async () => {
    const absent = `sha256:${'0'.repeat(64)}`
    const r = await runKiln(['--data-dir', join(work, 'c'), 'pull', absent, '--bootstrap', addr, '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0'], { timeoutMs: 150_000 })
    expect([3, 6]).toContain(r.code)
    expect(r.stderr).toMatch(/kiln: error: /)
    const blobs = join(work, 'c', 'store', 'blobs', 'sha256')
    expect(existsSync(blobs) ? readdirSync(blobs) : []).toEqual([])
  }, 160_000)
})
