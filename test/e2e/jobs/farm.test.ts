/**
 * The farm's capabilities, trust and tags end to end, every party its own
 * `kiln` process (as uid 65534 when the tests run as root), on loopback:
 *
 * - Agent `gpu` has `agent.capabilities: [gpu]` in kiln.yaml and a fake
 *   nvidia-smi on PATH (printing what the real one prints for
 *   `--query-gpu=name,driver_version,memory.total --format=csv,noheader`);
 *   agent `plain` has neither. `kiln peers --capability gpu` finds only the
 *   first, with the GPU in its signed record.
 * - Neither agent trusts the requester: its `--require gpu` job is declined.
 *   `kiln trust add-peer` on both agents' data dirs, no restart, no signal:
 *   the same requester's next job is taken, by the gpu agent.
 * - `submit -t` published a signed tag record: a gateway that does not trust
 *   the requester answers the tag with MANIFEST_UNKNOWN and says why in the
 *   error's detail; after `kiln trust add-peer` on the gateway (running, no
 *   restart) skopeo pulls the image by tag through it.
 */
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import { makeContext } from '../../helpers/context.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { addressOf, kilnProcs } from '../../helpers/kiln-procs.ts'
import type { KilnProcs, Proc } from '../../helpers/kiln-procs.ts'

const NVIDIA_SMI = `#!/bin/sh
if [ "$1" = "--query-gpu=name,driver_version,memory.total" ] && [ "$2" = "--format=csv,noheader" ]; then
  echo "NVIDIA A100-SXM4-40GB, 535.104.05, 40960 MiB"
  exit 0
fi
echo "NVIDIA-SMI fake: $*" >&2
exit 6
`
const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin'

interface Summary { jobId: string, digest: string, platforms: Array<{ platform: string, builders: string[] }>, published: Array<{ repository: string, tag: string, storedOn: number }> }
interface CapRecord { peerId: string, capabilities: string[], details: { gpus?: Array<{ vendor: string, model: string, memoryMiB: number }> } }

describe.skipIf(!haveTools('setpriv', 'skopeo'))('farm: capabilities, trust without restarts, tags for results', () => {
  let u: Unprivileged
  let k: KilnProcs
  const dir = (name: string): string => join(u.work, name)
  const ids: Partial<Record<'gpu' | 'plain' | 'requester', string>> = {}
  const addrs: Partial<Record<'gpu' | 'plain', string>> = {}
  const agents: Partial<Record<'gpu' | 'plain', Proc>> = {}
  let ctx: string

  const netArgs = (): string[] => ['--bootstrap', `${addrs.gpu as string},${addrs.plain as string}`, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns']
  const logs = (): string => `--- gpu:\n${agents.gpu?.stderr() ?? ''}\n--- plain:\n${agents.plain?.stderr() ?? ''}`

  beforeAll(async () => {
    u = makeUnprivileged()
    k = kilnProcs(u)
    for (const name of ['gpu', 'plain', 'requester', 'gateway', 'bin']) mkdirSync(dir(name))
    writeFileSync(join(dir('bin'), 'nvidia-smi'), NVIDIA_SMI)
    chmodSync(join(dir('bin'), 'nvidia-smi'), 0o755)
    writeFileSync(join(dir('gpu'), 'kiln.yaml'), 'agent:\n  capabilities: [gpu]\n')
    ctx = makeContext(u, { Dockerfile: 'FROM scratch\nCOPY model.txt /model.txt\n', 'model.txt': 'weights\n' })
    u.give(u.work)
    for (const name of ['gpu', 'plain', 'requester'] as const) ids[name] = await k.peerId(dir(name))
    // The requester takes offers from both agents; they do not trust it yet.
    for (const name of ['gpu', 'plain'] as const) await k.run(dir('requester'), ['trust', 'add-peer', ids[name] as string, '--roles', 'builder'])

    const agentArgs = ['agent', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--platform', 'linux/amd64', '--log-level', 'info']
    agents.gpu = k.start(agentArgs, dir('gpu'), { KILN_CONFIG: join(dir('gpu'), 'kiln.yaml'), PATH: `${dir('bin')}:${DEFAULT_PATH}` })
    addrs.gpu = await addressOf(agents.gpu)
    agents.plain = k.start([...agentArgs, '--bootstrap', addrs.gpu], dir('plain'))
    addrs.plain = await addressOf(agents.plain)
    await Promise.all([agents.gpu.waitFor(/capability record published/, 120_000), agents.plain.waitFor(/capability record published/, 120_000)])
  }, 300_000)

  afterAll(async () => {
    await k?.stopAll()
    u?.cleanup()
  }, 60_000)

  it('kiln peers --capability gpu finds the agent configured with gpu, with the GPU nvidia-smi reports', { timeout: 60_000 }, async () => {
    const out = await k.run(dir('requester'), ['peers', '--capability', 'gpu', ...netArgs(), '--timeout', '10', '--json'])
    const records = JSON.parse(out) as CapRecord[]
    expect(records.map(r => r.peerId)).toEqual([ids.gpu])
    expect(records[0]?.capabilities).toContain('gpu')
    expect(records[0]?.details.gpus).toEqual([{ vendor: 'nvidia', model: 'NVIDIA A100-SXM4-40GB', memoryMiB: 40960 }])
  })

  it('a --require gpu job is declined until kiln trust add-peer on the agents, then taken by the gpu agent without a restart', { timeout: 240_000 }, async () => {
    const submit = async (): Promise<{ code: number, stdout: string, stderr: string }> =>
      await k.exec(['submit', '--platform', 'linux/amd64', '--require', 'gpu', '-t', 'farm/model:1', ...netArgs(), '--timeout', '120', '--json', ctx], dir('requester'), 180_000)

    const refused = await submit()
    expect(refused.code, `${refused.stderr}\n${logs()}`).toBe(6)
    expect(refused.stderr).toMatch(/declined: requester not trusted: .* is not trusted as requester/)

    for (const name of ['gpu', 'plain'] as const) await k.run(dir(name), ['trust', 'add-peer', ids.requester as string, '--roles', 'requester'])
    const ok = await submit()
    expect(ok.code, `${ok.stderr}\n${logs()}`).toBe(0)
    const summary = JSON.parse(ok.stdout) as Summary
    expect(summary.platforms).toEqual([expect.objectContaining({ platform: 'linux/amd64', builders: [ids.gpu] })])
    expect(summary.published).toEqual([{ repository: 'farm/model', tag: '1', storedOn: expect.any(Number) }])
    expect(summary.published[0]?.storedOn).toBeGreaterThan(0)
    expect(agents.gpu?.stderr()).toMatch(/trust policy and certificates read again/)
  })

  it('the tag record resolves through a gateway once it trusts the requester; before, the error detail says why', { timeout: 120_000 }, async () => {
    const gw = k.start(['gateway', '--listen', '127.0.0.1:0', '--bootstrap', `${addrs.gpu as string},${addrs.plain as string}`, '--json', '--log-level', 'info'], dir('gateway'))
    const url = (await gw.waitFor(/"url":\s*"(http:\/\/127\.0\.0\.1:\d+)"/))[1] as string
    const manifest = async (): Promise<Response> => await fetch(`${url}/v2/farm/model/manifests/1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json' } })

    let res = await manifest()
    // The network may need a moment to show the gateway the record; until then the tag is simply unknown.
    for (let i = 0; i < 10 && res.status === 404; i++) {
      const body = await res.clone().json() as { errors: Array<{ detail?: { refused?: unknown[] } }> }
      if (body.errors[0]?.detail?.refused !== undefined) break
      await new Promise(resolve => setTimeout(resolve, 1000))
      res = await manifest()
    }
    expect(res.status).toBe(404)
    const body = await res.json() as { errors: Array<{ code: string, message: string, detail: { reference: string, refused: Array<{ signer: string, reason: string }> } }> }
    expect(body.errors[0]).toMatchObject({ code: 'MANIFEST_UNKNOWN', detail: { reference: '1' } })
    expect(body.errors[0]?.detail.refused).toEqual([{ signer: ids.requester, reason: expect.stringMatching(/is not trusted as builder/) }])

    await k.run(dir('gateway'), ['trust', 'add-peer', ids.requester as string, '--roles', 'builder'])
    const layout = join(u.work, 'pulled')
    execFileSync('skopeo', ['copy', '--src-tls-verify=false', `docker://${url.replace(/^http:\/\//, '')}/farm/model:1`, `oci:${layout}:1`], { stdio: 'pipe', timeout: 60_000 })
    const inspected = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci:${layout}:1`], { encoding: 'utf8' })) as { layers: unknown[] }
    expect(inspected.layers).toHaveLength(1)
    await gw.waitFor(/trust policy and certificates read again/, 10_000)
  })
})
