import { createServer } from 'node:http'
import type { Server } from 'node:http'
import { createServer as createTcpServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HostProbe } from '../../../src/builder/sandbox/index.ts'
import { KilnConfigSchema } from '../../../src/config/index.ts'
import type { KilnConfig, KilnConfigInput } from '../../../src/config/index.ts'
import { createDoctor, createSystemAccess, mountTypeOf, tcpTarget } from '../../../src/doctor/index.ts'
import type { CheckResult, SystemAccess } from '../../../src/doctor/index.ts'

const GiB = 1024 ** 3

function config (input: KilnConfigInput = {}, dataDir = '/data/kiln'): KilnConfig {
  return { ...KilnConfigSchema.parse(input), dataDir }
}

const HEALTHY_PROBE: HostProbe = {
  userNamespaces: { ok: true, detail: 'unshare -Ur' },
  overlayInUserns: { ok: true, detail: 'overlay mount in a user namespace' },
  drivers: [
    { driver: 'bwrap', ok: true, features: { overlay: true, readOnlyMounts: true, networkIsolation: true, pidIsolation: true, processIsolation: true, rootEmulation: true }, detail: 'runs a step' },
    { driver: 'unshare', ok: true, features: { overlay: true, readOnlyMounts: true, networkIsolation: true, pidIsolation: true, processIsolation: true, rootEmulation: false }, detail: 'runs a step' },
    { driver: 'proot', ok: false, features: { overlay: false, readOnlyMounts: false, networkIsolation: false, pidIsolation: true, processIsolation: false, rootEmulation: true }, detail: 'proot -0: program not installed' }
  ],
  selected: 'bwrap'
}

/** A healthy fake node; each test breaks one thing. */
function fakeSystem (over: Partial<SystemAccess> & { files?: Record<string, string> } = {}): SystemAccess {
  const files: Record<string, string> = {
    '/proc/sys/user/max_user_namespaces': '63000\n',
    '/proc/mounts': '/dev/sda1 / ext4 rw 0 0\n/dev/sdb1 /data ext4 rw 0 0\n',
    ...over.files
  }
  return {
    readText: async (p) => files[p],
    readdir: async () => undefined,
    statfs: async () => ({ type: 0xef53, bsize: 4096, blocks: 100 * GiB / 4096, bavail: 50 * GiB / 4096, files: 1_000_000, ffree: 900_000 }),
    mode: async (p) => p === '/data/kiln' ? 0o700 : undefined,
    connect: async () => {},
    dialPeer: async () => ({ peerId: '12D3KooWrelay', protocols: ['/ipfs/id/1.0.0', '/libp2p/circuit/relay/0.2.0/hop'] }),
    httpDate: async () => new Date(),
    probeSandboxes: async () => HEALTHY_PROBE,
    ownershipLedger: () => undefined,
    toolVersion: async (name) => name === 'git' ? 'git version 2.39.5' : undefined,
    trustCounts: async () => ({ roots: 1, peers: 0 }),
    now: () => Date.now(),
    arch: 'x64',
    ...over
  }
}

async function run (system: SystemAccess, input: KilnConfigInput = {}, gatewayUrl?: string): Promise<{ byId: (id: string) => CheckResult, problems: number, warnings: number }> {
  const report = await createDoctor({ config: config(input), system, ...(gatewayUrl !== undefined ? { gatewayUrl } : {}) }).run()
  return {
    byId: (id) => {
      const c = report.checks.find(x => x.id === id)
      if (c === undefined) throw new Error(`no check ${id}; have ${report.checks.map(x => x.id).join(', ')}`)
      return c
    },
    problems: report.problems,
    warnings: report.warnings
  }
}

describe('doctor with injected failures', () => {
  it('a healthy node has no problems', async () => {
    const r = await run(fakeSystem(), { node: { bootstrap: ['/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWxyz'] } })
    expect(r.problems).toBe(0)
    expect(r.byId('sandbox')).toMatchObject({ status: 'ok', detail: 'builds will use the bwrap driver' })
    expect(r.byId('sandbox.proot').status).toBe('warn')
    expect(r.byId('network.bootstrap').status).toBe('ok')
    expect(r.byId('disk.fstype').status).toBe('ok')
  })

  it('no user namespaces: sysctls and the probe say why, and no driver but proot is left', async () => {
    const probe: HostProbe = {
      userNamespaces: { ok: false, detail: 'unshare -Ur: exit 1 (unshare: write failed /proc/self/uid_map: Operation not permitted)' },
      overlayInUserns: { ok: false, detail: 'needs user namespaces' },
      drivers: HEALTHY_PROBE.drivers.map(d => ({ ...d, ok: false, detail: 'needs user namespaces' })),
      selected: undefined
    }
    const r = await run(fakeSystem({
      probeSandboxes: async () => probe,
      files: { '/proc/sys/user/max_user_namespaces': '0\n', '/proc/sys/kernel/unprivileged_userns_clone': '0\n', '/proc/sys/kernel/apparmor_restrict_unprivileged_userns': '1\n' }
    }))
    for (const id of ['userns.max', 'userns.clone', 'userns.apparmor', 'userns', 'sandbox', 'sandbox.bwrap']) expect(r.byId(id).status, id).toBe('problem')
    expect(r.byId('userns.max').fix).toMatch(/max_user_namespaces=/)
    expect(r.byId('overlay').status).toBe('warn')
    expect(r.byId('sandbox').detail).toMatch(/no sandbox driver works/)
  })

  it('proot as the only working driver is a warning that says it builds no recipes of others', async () => {
    const probe: HostProbe = {
      ...HEALTHY_PROBE,
      userNamespaces: { ok: false, detail: 'unshare -Ur: exit 1' },
      drivers: HEALTHY_PROBE.drivers.map(d => d.driver === 'proot' ? { ...d, ok: true, detail: 'runs a step' } : { ...d, ok: false, detail: 'needs user namespaces' }),
      selected: 'proot'
    }
    const auto = await run(fakeSystem({ probeSandboxes: async () => probe }))
    expect(auto.byId('sandbox.proot')).toMatchObject({ status: 'warn', detail: expect.stringMatching(/cannot isolate build steps from kiln/), fix: expect.stringMatching(/recipes you trust/) })
    expect(auto.byId('sandbox')).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^builds will use the proot driver: .* An agent declines jobs of other peers and kiln up refuses gateway builds$/) })
    const named = await run(fakeSystem({ probeSandboxes: async () => probe }), { build: { sandbox: 'proot' } })
    expect(named.byId('sandbox').detail).toMatch(/kiln agent and kiln up refuse to start unless given --no-jobs/)
    // Where bwrap works, proot is not used: its own line warns, the summary does not.
    const healthy = await run(fakeSystem({ probeSandboxes: async () => ({ ...HEALTHY_PROBE, drivers: HEALTHY_PROBE.drivers.map(d => ({ ...d, ok: true })) }) }))
    expect(healthy.byId('sandbox.proot').status).toBe('warn')
    expect(healthy.byId('sandbox.bwrap').status).toBe('ok')
    expect(healthy.byId('sandbox').status).toBe('ok')
  })

  it('root emulation is ok under bwrap and a warning, with bwrap as the fix, under unshare', async () => {
    expect(await run(fakeSystem()).then(r => r.byId('sandbox.root-emulation').status)).toBe('ok')
    const unshare = await run(fakeSystem(), { build: { sandbox: 'unshare' } })
    expect(unshare.byId('sandbox.root-emulation')).toMatchObject({ status: 'warn', detail: expect.stringMatching(/unshare driver has no root emulation/), fix: expect.stringMatching(/bubblewrap/) })
  })

  it('owners set in RUN: ok under bwrap with fakeroot; a warning naming the fix without fakeroot, and under unshare', async () => {
    expect(await run(fakeSystem()).then(r => r.byId('sandbox.owners').status)).toBe('ok')
    const missing = await run(fakeSystem({ ownershipLedger: () => '/usr/bin/faked-sysv missing' }))
    expect(missing.byId('sandbox.owners')).toMatchObject({ status: 'warn', detail: expect.stringMatching(/faked-sysv missing/), fix: expect.stringMatching(/apt-get install fakeroot busybox-static/) })
    const unshare = await run(fakeSystem(), { build: { sandbox: 'unshare' } })
    expect(unshare.byId('sandbox.owners')).toMatchObject({ status: 'warn', detail: expect.stringMatching(/unshare driver keeps no record/) })
  })

  it('a configured driver that does not work is a problem even if another works', async () => {
    const r = await run(fakeSystem(), { build: { sandbox: 'proot' } })
    expect(r.byId('sandbox.proot').status).toBe('problem')
    expect(r.byId('sandbox').status).toBe('problem')
  })

  it('full disk and exhausted inodes are problems; low space is a warning', async () => {
    const full = await run(fakeSystem({ statfs: async () => ({ type: 0xef53, bsize: 4096, blocks: 1e6, bavail: 10, files: 1000, ffree: 3 }) }))
    expect(full.byId('disk.space')).toMatchObject({ status: 'problem' })
    expect(full.byId('disk.space').fix).toMatch(/store.quota/)
    expect(full.byId('disk.inodes').status).toBe('problem')
    const low = await run(fakeSystem({ statfs: async () => ({ type: 0xef53, bsize: 4096, blocks: 1e7, bavail: 5 * GiB / 4096, files: 0, ffree: 0 }) }))
    expect(low.byId('disk.space').status).toBe('warn')
    expect(low.byId('disk.inodes').status).toBe('skip')
  })

  it('a data dir on NFS (by statfs magic) or Lustre (by /proc/mounts) is a warning', async () => {
    const nfs = await run(fakeSystem({ statfs: async () => ({ type: 0x6969, bsize: 4096, blocks: 1e8, bavail: 1e8, files: 1e6, ffree: 1e6 }), files: { '/proc/mounts': '/dev/sda1 / ext4 rw 0 0\n' } }))
    expect(nfs.byId('disk.fstype')).toMatchObject({ status: 'warn' })
    expect(nfs.byId('disk.fstype').detail).toMatch(/nfs/)
    const lustre = await run(fakeSystem({ files: { '/proc/mounts': '/dev/sda1 / ext4 rw 0 0\n10.0.0.5@o2ib:/fs /data lustre rw 0 0\n' } }))
    expect(lustre.byId('disk.fstype').detail).toMatch(/lustre \(mounted at \/data\)/)
    expect(lustre.problems).toBe(0)
  })

  it('an unreachable bootstrap peer is a problem when none is reachable, a warning when some are', async () => {
    const refuse = async (host: string): Promise<void> => { if (host === '10.9.9.9') throw new Error('connect ECONNREFUSED') }
    const none = await run(fakeSystem({ connect: refuse }), { node: { bootstrap: ['/ip4/10.9.9.9/tcp/4001'], relayClient: true } })
    expect(none.byId('network.bootstrap').status).toBe('problem')
    expect(none.byId('network.bootstrap').detail).toMatch(/unreachable .*ECONNREFUSED/)
    expect(none.byId('network.relay').status).toBe('problem')
    const some = await run(fakeSystem({ connect: refuse }), { node: { bootstrap: ['/ip4/10.9.9.9/tcp/4001', '/dns4/login1/tcp/4001/p2p/12D3KooWa'], relayClient: true } })
    expect(some.byId('network.bootstrap').status).toBe('warn')
    expect(some.byId('network.relay').status).toBe('ok')
  })

  it('a relay must answer a libp2p dial and speak the relay hop protocol, not just accept TCP', async () => {
    const node = { node: { bootstrap: ['/dns4/login1/tcp/4001/p2p/12D3KooWa'], relayClient: true } }
    const notRelay = await run(fakeSystem({ dialPeer: async () => ({ peerId: '12D3KooWa', protocols: ['/ipfs/id/1.0.0', '/kiln/blob/1.0.0'] }) }), node)
    expect(notRelay.byId('network.relay')).toMatchObject({ status: 'problem' })
    expect(notRelay.byId('network.relay').detail).toMatch(/not a relay: \/dns4\/login1/)
    expect(notRelay.byId('network.relay').fix).toMatch(/node\.relay: true/)
    const wrongKey = await run(fakeSystem({ dialPeer: async () => { throw new Error('The peer id of the remote did not match the expected peer id') } }), node)
    expect(wrongKey.byId('network.relay')).toMatchObject({ status: 'problem' })
    expect(wrongKey.byId('network.relay').detail).toMatch(/libp2p dial failed: .*did not match/)
    expect(wrongKey.byId('network.relay').fix).toMatch(/kiln key show/)
    expect(wrongKey.byId('network.bootstrap').status).toBe('ok')
  })

  it('node.relayVia: its relays are checked, with no bootstrap list needed', async () => {
    const refuse = async (host: string): Promise<void> => { if (host === '10.9.9.9') throw new Error('connect ECONNREFUSED') }
    const down = await run(fakeSystem({ connect: refuse }), { node: { listen: [], relayVia: ['/ip4/10.9.9.9/tcp/4001/p2p/12D3KooWa'] } })
    expect(down.byId('network.relay')).toMatchObject({ status: 'problem' })
    expect(down.byId('network.relay').detail).toMatch(/no relay of node\.relayVia is reachable: \/ip4\/10\.9\.9\.9.*ECONNREFUSED/)
    const up = await run(fakeSystem({ dialPeer: async () => ({ peerId: '12D3KooWa', protocols: ['/libp2p/circuit/relay/0.2.0/hop'] }) }), { node: { listen: [], relayVia: ['/dns4/login1/tcp/4001/p2p/12D3KooWa'] } })
    expect(up.byId('network.relay')).toMatchObject({ status: 'ok' })
  })

  it('compares the clock with node.timeReference when no --gateway-url is given', async () => {
    const asked: string[] = []
    const skewed = await run(fakeSystem({ httpDate: async (url) => { asked.push(url); return new Date(Date.now() + 60_000) } }), { node: { timeReference: 'http://gw.example.org:5000' } })
    expect(asked).toEqual(['http://gw.example.org:5000/v2/'])
    expect(skewed.byId('clock').status).toBe('warn')
    const down = await run(fakeSystem({ httpDate: async () => { throw new Error('ECONNREFUSED') } }), { node: { timeReference: 'http://gw.example.org:5000' } })
    expect(down.byId('clock')).toMatchObject({ status: 'warn', fix: expect.stringMatching(/node\.timeReference/) as unknown })
    expect(() => config({ node: { timeReference: 'gw:5000' } })).toThrow()
  })

  it('clock skew beyond minutes is a problem; no gateway skips the check', async () => {
    const skewed = await run(fakeSystem({ httpDate: async () => new Date(Date.now() - 10 * 60_000) }), {}, 'http://gw:5000')
    expect(skewed.byId('clock').status).toBe('problem')
    expect(skewed.byId('clock').detail).toMatch(/6\d\d s off/)
    expect((await run(fakeSystem(), {}, 'http://gw:5000')).byId('clock').status).toBe('ok')
    expect((await run(fakeSystem())).byId('clock').status).toBe('skip')
  })

  it('no trust roots is a warning; a broken trust.yaml is a problem', async () => {
    expect((await run(fakeSystem({ trustCounts: async () => ({ roots: 0, peers: 0 }) }))).byId('trust').status).toBe('warn')
    expect((await run(fakeSystem({ trustCounts: async () => { throw new Error('trust.yaml: bad') } }))).byId('trust').status).toBe('problem')
  })

  it('emulators: a foreign platform needs a binfmt entry with the F flag', async () => {
    const binfmt = (flags: string): Partial<SystemAccess> & { files: Record<string, string> } => ({
      readdir: async (p) => p === '/proc/sys/fs/binfmt_misc' ? ['register', 'status', 'qemu-aarch64'] : undefined,
      files: { '/proc/sys/fs/binfmt_misc/qemu-aarch64': `enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: ${flags}\noffset 0\n` }
    })
    expect((await run(fakeSystem(), { agent: { platforms: ['linux/arm64'] } })).byId('emulators').status).toBe('problem')
    expect((await run(fakeSystem(binfmt('POCF')), { agent: { platforms: ['linux/arm64', 'linux/amd64'] } })).byId('emulators').status).toBe('ok')
    expect((await run(fakeSystem(binfmt('P')))).byId('emulators').status).toBe('warn')
    expect((await run(fakeSystem(binfmt('P')), { agent: { platforms: ['linux/arm64'] } })).byId('emulators').status).toBe('problem')
  })

  it('git: present is ok with its version, missing is a warning naming ADD of a git repository', async () => {
    expect((await run(fakeSystem())).byId('git')).toMatchObject({ status: 'ok', detail: 'git version 2.39.5' })
    const missing = (await run(fakeSystem({ toolVersion: async () => undefined }))).byId('git')
    expect(missing).toMatchObject({ status: 'warn', detail: expect.stringContaining('ADD of a git repository') })
  })

  it('a data dir others may enter, or a key or database they may read, is a warning that says what start-up fixes', async () => {
    const modes: Record<string, number> = { '/data/kiln': 0o755, '/data/kiln/kiln.db': 0o644, '/data/kiln/identity.key': 0o600 }
    const open = (await run(fakeSystem({ mode: async (p) => modes[p] }))).byId('datadir.private')
    expect(open.status).toBe('warn')
    expect(open.detail).toBe('data dir /data/kiln is 0755: other users of this node can enter it; secret file /data/kiln/kiln.db is 0644: other users of this node can read it')
    expect(open.fix).toMatch(/any kiln command that opens the data dir .* makes them private, or: chmod 0700 \/data\/kiln; chmod 0600 \/data\/kiln\/kiln.db$/)
    expect((await run(fakeSystem())).byId('datadir.private').status).toBe('ok')
    expect((await run(fakeSystem({ mode: async () => undefined }))).byId('datadir.private')).toMatchObject({ status: 'ok', detail: expect.stringMatching(/does not exist yet; kiln creates it 0700/) })
  })

  it('a check that throws is reported, not thrown', async () => {
    const r = await run(fakeSystem({ probeSandboxes: async () => { throw new Error('probe exploded') } }))
    expect(r.byId('sandbox')).toMatchObject({ status: 'problem', detail: expect.stringMatching(/probe exploded/) })
  })

  it('parses multiaddrs and /proc/mounts', () => {
    expect(tcpTarget('/ip4/10.0.0.1/tcp/4001/p2p/12D3KooW')).toEqual({ host: '10.0.0.1', port: 4001 })
    expect(tcpTarget('/ip6/::1/tcp/4001')).toEqual({ host: '::1', port: 4001 })
    expect(tcpTarget('/ip4/10.0.0.1/udp/4001/quic-v1')).toBeUndefined()
    expect(mountTypeOf('/dev/a / ext4 rw 0 0\nsrv:/home /home nfs4 rw 0 0\nsrv:/home2 /home2 nfs rw 0 0\n', '/home/u/.local/share/kiln')).toEqual({ mountPoint: '/home', type: 'nfs4' })
    expect(mountTypeOf('/dev/a / ext4 rw 0 0\n/dev/b /my\\040disk xfs rw 0 0\n', '/my disk/kiln')).toEqual({ mountPoint: '/my disk', type: 'xfs' })
  })
})

describe('doctor on this machine', () => {
  let dir: string
  let listener: ReturnType<typeof createTcpServer>
  let gateway: Server
  let port: number
  let closedPort: number
  let gatewayUrl: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-doctor-'))
    listener = createTcpServer(s => { s.destroy() })
    await new Promise<void>(resolve => listener.listen(0, '127.0.0.1', resolve))
    port = (listener.address() as AddressInfo).port
    const probe = createTcpServer()
    await new Promise<void>(resolve => probe.listen(0, '127.0.0.1', resolve))
    closedPort = (probe.address() as AddressInfo).port
    await new Promise<void>(resolve => probe.close(() => { resolve() }))
    gateway = createServer((_req, res) => { res.writeHead(200).end() })
    await new Promise<void>(resolve => gateway.listen(0, '127.0.0.1', resolve))
    gatewayUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    await new Promise<void>(resolve => listener.close(() => { resolve() }))
    gateway.closeAllConnections()
    await new Promise<void>(resolve => gateway.close(() => { resolve() }))
    await rm(dir, { recursive: true, force: true })
  })

  it('checks the real system: loopback bootstrap reachable, a closed port not, the clock against a local server', async () => {
    const cfg = config({ node: { bootstrap: [`/ip4/127.0.0.1/tcp/${port}`, `/ip4/127.0.0.1/tcp/${closedPort}`] } }, join(dir, 'not-yet'))
    const report = await createDoctor({ config: cfg, system: createSystemAccess(cfg), gatewayUrl }).run()
    const byId = new Map(report.checks.map(c => [c.id, c]))
    expect(byId.get('network.bootstrap')?.status).toBe('warn')
    expect(byId.get('network.bootstrap')?.detail).toMatch(new RegExp(`reachable /ip4/127.0.0.1/tcp/${port} .*unreachable /ip4/127.0.0.1/tcp/${closedPort}`))
    expect(byId.get('clock')?.status).toBe('ok')
    expect(byId.get('disk.space')?.detail).toMatch(/not created yet; checked/)
    expect(['ok', 'warn', 'problem']).toContain(byId.get('sandbox')?.status)
    for (const c of report.checks) {
      expect(['ok', 'warn', 'problem', 'skip']).toContain(c.status)
      if (c.status === 'warn' || c.status === 'problem') expect(c.fix, c.id).toBeTruthy()
    }
    expect(report.problems).toBe(report.checks.filter(c => c.status === 'problem').length)
  })

  it('dials relay candidates over libp2p: a relaying node is ok, a plain node or a wrong peer id is a problem', { timeout: 60_000 }, async () => {
    const { createKilnNode } = await import('../../../src/p2p/index.ts')
    const relay = await createKilnNode({ listen: ['/ip4/127.0.0.1/tcp/0'], relay: true })
    const plain = await createKilnNode({ listen: ['/ip4/127.0.0.1/tcp/0'] })
    try {
      const addr = (n: typeof relay): string => (n.getMultiaddrs()[0] as { toString: () => string }).toString()
      const check = async (bootstrap: string[]): Promise<CheckResult | undefined> => {
        const cfg = config({ node: { bootstrap, relayClient: true, mdns: false } }, dir)
        const report = await createDoctor({ config: cfg, system: createSystemAccess(cfg) }).run()
        return report.checks.find(c => c.id === 'network.relay')
      }
      const ok = await check([addr(relay), addr(plain)])
      expect(ok?.status, ok?.detail).toBe('ok')
      expect(ok?.detail).toMatch(new RegExp(`1 of 2 .*relay: ${addr(relay)} .*not a relay: ${addr(plain)}`))
      expect((await check([addr(plain)]))?.status).toBe('problem')
      const wrongId = addr(relay).replace(relay.peerId.toString(), plain.peerId.toString())
      const wrong = await check([wrongId])
      expect(wrong?.status).toBe('problem')
      expect(wrong?.detail).toMatch(/libp2p dial failed/)
    } finally {
      await relay.stop()
      await plain.stop()
    }
  })
})
