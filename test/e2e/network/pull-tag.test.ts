/**
 * `kiln pull REPO:TAG` between processes on loopback: an agent holds an
 * image; a node in this process, joined to the agent's DHT, signs a tag
 * record naming it. A data dir whose trust policy does not know that signer
 * is refused with the reason; once `kiln trust add-peer` trusts it (as the
 * gateway's rule wants, builder or gateway), the pull resolves the tag,
 * fetches by digest and names the image locally. A tag nobody signed is
 * not found.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, execFileSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createKilnNode } from '../../../src/p2p/index.ts'
import type { KilnNode } from '../../../src/p2p/index.ts'
import { publishTagRecord } from '../../../src/p2p/tag-records.ts'
import { KILN, REPO_ROOT, runKiln } from '../../helpers/cli.ts'
import { haveTools } from '../../helpers/tools.ts'

const MAKE_BASE = join(REPO_ROOT, '..', 'shared', 'bench', 'make-busybox-base.sh')

describe.skipIf(!haveTools('umoci', 'busybox'))('kiln pull REPO:TAG through signed tag records', () => {
  const work = mkdtempSync(join(tmpdir(), 'kiln-pull-tag-'))
  const a = join(work, 'a')
  const c = join(work, 'c')
  let agent: ChildProcess | undefined
  let signer: KilnNode | undefined
  let addr = ''
  let digest = ''

  const pull = async (ref: string, timeoutMs = 120_000): Promise<{ code: number, stdout: string, stderr: string }> =>
    await runKiln(['--data-dir', c, 'pull', ref, '--bootstrap', addr, '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--json'], { timeoutMs })

  beforeAll(async () => {
    execFileSync('sh', [MAKE_BASE, join(work, 'layout'), 'base'], { stdio: 'ignore' })
    const imported = await runKiln(['--data-dir', a, 'image', 'import', `oci:${join(work, 'layout')}:base`, '-t', 'net/busybox:base', '--json'])
    expect(imported.code, imported.stderr).toBe(0)
    const image = (JSON.parse(imported.stdout) as Array<{ digest: string, mediaType: string, size: number }>)[0]
    digest = image?.digest ?? ''
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
    const key = await generateKeyPair('Ed25519')
    signer = await createKilnNode({ privateKey: key, listen: ['/ip4/127.0.0.1/tcp/0'], dht: { initialQuerySelfInterval: 200 } })
    await signer.dial(multiaddr(addr))
    const published = await publishTagRecord(signer, key, { repository: 'net/busybox', tag: 'signed', digest, mediaType: image?.mediaType ?? '', size: image?.size ?? 0 }, { signal: AbortSignal.timeout(30_000) })
    expect(published.storedOn).toBeGreaterThan(0)
  }, 150_000)

  afterAll(async () => {
    await signer?.stop()
    if (agent !== undefined && agent.exitCode === null) {
      const exited = new Promise(resolve => agent?.once('exit', resolve))
      agent.kill('SIGTERM')
      await exited
    }
    rmSync(work, { recursive: true, force: true })
  })

  it('refuses a record whose signer the policy does not trust, saying why, and stores nothing', async () => {
    const r = await pull('net/busybox:signed')
    expect(r.code, r.stderr).toBe(4)
    expect(r.stderr).toContain(`no trusted tag record for net/busybox:signed: 1 found, none counted (${signer?.peerId.toString() ?? ''}:`)
    expect(r.stderr).toMatch(/hint: trust the signer/)
    const ls = JSON.parse((await runKiln(['--data-dir', c, 'image', 'ls', '--json'])).stdout) as unknown[]
    expect(ls).toEqual([])
  }, 150_000)

  it('once the signer is trusted, resolves the tag, pulls by digest and names the image', async () => {
    const trusted = await runKiln(['--data-dir', c, 'trust', 'add-peer', signer?.peerId.toString() ?? '', '--roles', 'builder'])
    expect(trusted.code, trusted.stderr).toBe(0)
    const r = await pull('net/busybox:signed')
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ digest, name: 'net/busybox:signed', signer: signer?.peerId.toString(), banned: [] })
    const inspect = JSON.parse((await runKiln(['--data-dir', c, 'image', 'inspect', 'net/busybox:signed', '--json'])).stdout) as { digest: string, complete: boolean }
    expect(inspect).toMatchObject({ digest, complete: true })
  }, 150_000)

  it('a tag nobody signed is not found', async () => {
    const r = await pull('net/busybox:unsigned')
    expect(r.code, r.stderr).toBe(3)
    expect(r.stderr).toMatch(/no tag record for net\/busybox:unsigned on the network/)
  }, 150_000)
})
