/**
 * The gateway's build extension hands a platform it cannot build to the
 * network, every party its own process as uid 65534: `kiln up` (its agent
 * builds the host's platform only) and a `kiln agent` advertising a platform
 * the up node neither builds nor emulates, trusted both ways by peer id. A
 * build POSTed to the up node's gateway for that platform (FROM scratch and
 * COPY: nothing runs, so no emulator is needed) becomes a job the agent
 * wins; the build succeeds, its log shows the agent's offer, award and log
 * lines, and the image pulled through the gateway is the agent's, for the
 * platform asked. A `kiln gateway` attached to the network (no builder of
 * its own, its own node) hands the same build to the same agent.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { emulatedPlatforms } from '../../../agent/capabilities.ts'
import { haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { addressOf, kilnProcs } from '../../helpers/kiln-procs.ts'
import type { KilnProcs, Proc } from '../../helpers/kiln-procs.ts'
import { tarOf } from './fixtures.ts'

const MANIFEST_ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'

describe.skipIf(!haveTools('setpriv'))('gateway builds on the network', () => {
  let u: Unprivileged
  let k: KilnProcs
  let upDir: string
  let agentDir: string
  let gwDir: string
  let platform: string
  let agentAddr: string
  let agent: Proc

  beforeAll(async () => {
    u = makeUnprivileged()
    k = kilnProcs(u)
    upDir = join(u.work, 'up')
    agentDir = join(u.work, 'agent')
    gwDir = join(u.work, 'gateway')
    mkdirSync(upDir)
    mkdirSync(agentDir)
    mkdirSync(gwDir)
    u.give(u.work)
    const agentId = await k.peerId(agentDir)
    for (const dir of [upDir, gwDir]) {
      await k.run(dir, ['trust', 'add-peer', agentId, '--roles', 'builder'])
      await k.run(agentDir, ['trust', 'add-peer', await k.peerId(dir), '--roles', 'requester'])
    }
    // A platform this host does not emulate either, or the up node would build it itself.
    const emulated = await emulatedPlatforms()
    platform = ['linux/arm64', 'linux/riscv64', 'linux/s390x', 'linux/ppc64le'].find(p => !emulated.includes(p)) as string
    agent = k.start(['agent', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--platform', platform, '--log-level', 'warn'], agentDir)
    agentAddr = await addressOf(agent)
  }, 180_000)

  afterAll(async () => {
    await k?.stopAll()
    u?.cleanup()
  }, 60_000)

  it('POSTs a build for a platform only the other agent builds, which it builds; the image comes back through the gateway', { timeout: 300_000 }, async () => {
    const up = k.start(['up', '--gateway-listen', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--bootstrap', agentAddr, '--anonymous-push', '--log-level', 'warn', '--json'], upDir)
    const url = (await up.waitFor(/"url":\s*"(http:\/\/[^"]+)"/, 120_000))[1] as string
    const agentId = await k.peerId(agentDir)

    const context = Buffer.concat([
      tarOf('Dockerfile', Buffer.from('FROM scratch\nCOPY hello.txt /hello.txt\nCMD ["/hello.txt"]\n')).subarray(0, -1024),
      tarOf('hello.txt', Buffer.from('built on the network\n'))
    ])
    const res = await fetch(`${url}/v2/demo/net/_kiln/builds?platform=${platform}&tag=1`, { method: 'POST', headers: { 'content-type': 'application/x-tar' }, body: context, signal: AbortSignal.timeout(60_000) })
    expect(res.status, await res.clone().text()).toBe(202)
    const location = res.headers.get('location') as string
    await res.arrayBuffer()
    // The live log to its end (bounded), then the status.
    const log = await (await fetch(`${url}${location}/logs`, { signal: AbortSignal.timeout(240_000) })).text()
    const status = await (await fetch(`${url}${location}`)).json() as { status: string, platforms: Record<string, { builder: string, digest?: string }>, result?: { digest: string, tag: string }, error?: unknown }
    const said = `${log}\n${JSON.stringify(status.error)}\n--- up:\n${up.stderr()}\n--- agent:\n${agent.stderr()}`
    expect(status.status, said).toBe('succeeded')
    expect(status.platforms[platform]?.builder).toBe('network')
    expect(log).toContain(`${platform} | building with network`)
    expect(log).toContain(`offer from ${agentId}`)
    expect(log).toContain(`awarded to ${agentId}`)
    // The agent's own build log, relayed line by line with its peer id.
    expect(log).toMatch(new RegExp(`${agentId}: .*COPY hello\\.txt /hello\\.txt`))

    // Pulled through the gateway by tag: the manifest recorded and tagged as for a local build, for the platform asked.
    const m = await fetch(`${url}/v2/demo/net/manifests/1`, { headers: { accept: MANIFEST_ACCEPT }, signal: AbortSignal.timeout(30_000) })
    expect(m.status).toBe(200)
    expect(m.headers.get('docker-content-digest')).toBe(status.result?.digest)
    expect(status.platforms[platform]?.digest).toBe(status.result?.digest)
    const manifest = await m.json() as { config: { digest: string }, layers: Array<{ digest: string }> }
    const config = await (await fetch(`${url}/v2/demo/net/blobs/${manifest.config.digest}`, { signal: AbortSignal.timeout(30_000) })).json() as { os: string, architecture: string, variant?: string }
    expect(`${config.os}/${config.architecture}`).toBe(platform)
    // Every layer is in the gateway's store: fetched from the agent peer to peer.
    for (const layer of manifest.layers) {
      const b = await fetch(`${url}/v2/demo/net/blobs/${layer.digest}`, { method: 'HEAD', signal: AbortSignal.timeout(30_000) })
      expect(b.status).toBe(200)
    }
  })

  it('a kiln gateway on the network, with no builder of its own, hands the build to the agent', { timeout: 300_000 }, async () => {
    const gw = k.start(['gateway', '--listen', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0', '--bootstrap', agentAddr, '--anonymous-push', '--log-level', 'warn', '--json'], gwDir)
    const url = (await gw.waitFor(/"url":\s*"(http:\/\/[^"]+)"/, 120_000))[1] as string
    const agentId = await k.peerId(agentDir)
    const context = Buffer.concat([
      tarOf('Dockerfile', Buffer.from('FROM scratch\nCOPY hello.txt /hello.txt\n')).subarray(0, -1024),
      tarOf('hello.txt', Buffer.from('built for a plain gateway\n'))
    ])
    const res = await fetch(`${url}/v2/demo/gw/_kiln/builds?platform=${platform}&tag=1`, { method: 'POST', headers: { 'content-type': 'application/x-tar' }, body: context, signal: AbortSignal.timeout(60_000) })
    expect(res.status, await res.clone().text()).toBe(202)
    const location = res.headers.get('location') as string
    await res.arrayBuffer()
    const log = await (await fetch(`${url}${location}/logs`, { signal: AbortSignal.timeout(240_000) })).text()
    const status = await (await fetch(`${url}${location}`)).json() as { status: string, platforms: Record<string, { builder: string }>, result?: { digest: string }, error?: unknown }
    expect(status.status, `${log}\n${JSON.stringify(status.error)}\n--- gateway:\n${gw.stderr()}`).toBe('succeeded')
    expect(status.platforms[platform]?.builder).toBe('network')
    expect(log).toContain(`awarded to ${agentId}`)
    const m = await fetch(`${url}/v2/demo/gw/manifests/1`, { headers: { accept: MANIFEST_ACCEPT }, signal: AbortSignal.timeout(30_000) })
    expect(m.status).toBe(200)
    expect(m.headers.get('docker-content-digest')).toBe(status.result?.digest)
  })
})
