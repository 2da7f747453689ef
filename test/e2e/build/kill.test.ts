/**
 * Sandbox hardening end to end, as an unprivileged user (uid 65534 when the
 * tests run as root), for each driver installed (bwrap, unshare, proot):
 * - a SIGKILLed `kiln build` or `kiln agent` leaves no step process running
 *   (a `setsid`, HUP-immune double-forked child and a plain one); the time
 *   until the last one is gone is printed;
 * - the next start removes what the killed kiln left, and a live build's
 *   scratch is kept;
 * - a step sees its own processes only (bwrap, unshare) or no /proc at all
 *   (proot), and never kiln's environment;
 * - `kiln agent` and `kiln up` refuse to start with proot named while they
 *   would build for others;
 * - `kiln store df` counts build snapshots and `kiln gc` removes them.
 */
import { execFileSync } from 'node:child_process'
import { lstatSync, mkdirSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { haveTools } from '../../helpers/tools.ts'
import { kilnProcs } from '../../helpers/kiln-procs.ts'
import type { KilnProcs, Proc } from '../../helpers/kiln-procs.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { makeContext } from '../../helpers/context.ts'
import { processesWith } from '../../unit/builder/fixtures.ts'
import { APT_CONFIG_PATH } from '../../../src/builder/sandbox/root-emulation.ts'

const BENCH = join(import.meta.dirname, '../../../../shared/bench')
const DRIVERS = [{ driver: 'bwrap', tool: 'bwrap' }, { driver: 'unshare', tool: 'unshare' }, { driver: 'proot', tool: 'proot' }] as const
/** A step that leaves a setsid, HUP-immune daemon (what `setsid nohup cmd &` makes; busybox has no nohup) and a plain child. */
const LEAVES_DAEMONS = (m: string): string => `RUN (trap '' HUP; setsid sleep 301${m} </dev/null >/dev/null 2>&1 &); sleep 302${m}; echo never`

describe.skipIf(!haveTools('setpriv', 'umoci', 'busybox'))('nothing survives a kill, steps see no host process, proot builds for nobody else', () => {
  let u: Unprivileged
  let k: KilnProcs
  let layout: string
  let n = 0

  const fresh = (name: string): string => {
    const d = join(u.work, `${name}-${++n}`)
    mkdirSync(d)
    u.give(d)
    return d
  }
  const context = (dockerfile: string): string => makeContext(u, { Dockerfile: dockerfile }, { LAYOUT: layout })
  /** Every live process whose command line holds the marker: the step's sleeps, and the sandbox programs running its script. */
  const leftovers = (marker: string): number[] => processesWith(marker)
  const marker = (): string => `${Date.now() % 100_000}${Math.floor(Math.random() * 1000)}`
  /** SIGKILLs the kiln process and returns how long its step processes took to go, in ms. */
  const killAndWait = async (p: Proc, m: string): Promise<number> => {
    const killed = performance.now()
    process.kill(p.child.pid as number, 'SIGKILL')
    await p.exited
    await expect.poll(() => leftovers(m), { timeout: 15_000, interval: 10 }).toEqual([])
    return performance.now() - killed
  }
  const tmpOf = (): string => join(u.home, 'tmp')
  /** Our own proot temp dirs whose proot is gone (what a killed proot leaves in /tmp). */
  const deadProotTemp = (): string[] => readdirSync('/tmp').filter(name => {
    const m = /^proot(?:ed)?-(\d+)-/.exec(name)
    if (m === null) return false
    try { process.kill(Number(m[1]), 0); return false } catch { return lstatSync(join('/tmp', name)).uid === u.uid }
  })

  beforeAll(() => {
    u = makeUnprivileged()
    k = kilnProcs(u)
    layout = join(u.work, 'layout')
    execFileSync('sh', [join(BENCH, 'make-busybox-base.sh'), layout], { stdio: 'ignore' })
    u.give(layout)
  }, 120_000)
  afterAll(async () => {
    await k?.stopAll()
    u?.cleanup()
  }, 60_000)

  for (const { driver, tool } of DRIVERS) {
    describe.skipIf(!haveTools(tool))(`driver ${driver}`, () => {
      it('a SIGKILLed kiln build leaves no step process, and the next start removes its scratch', { timeout: 180_000 }, async () => {
        const data = fresh('data')
        const m = marker()
        const p = k.start(['build', '--sandbox', driver, context(`FROM oci:LAYOUT:base\n${LEAVES_DAEMONS(m)}\n`)], data)
        await expect.poll(() => [processesWith(`sleep\u0000301${m}`).length, processesWith(`sleep\u0000302${m}`).length], { timeout: 120_000, interval: 50 }).toEqual([1, 1])
        const ms = await killAndWait(p, m)
        console.log(`${driver}: the last step process was gone ${ms.toFixed(0)} ms after SIGKILL of kiln build`)
        expect(ms).toBeLessThan(5_000)

        // What the killed build left: its step or stage root under build/tmp, its lock, sandbox scratch in TMPDIR.
        const buildTmp = join(data, 'build', 'tmp')
        expect(readdirSync(buildTmp).length).toBeGreaterThan(0)
        expect(readdirSync(join(data, 'build', 'locks')).length).toBe(1)
        const ours = (): string[] => readdirSync(tmpOf()).filter(name => /^kiln-.*@\d+\.\d+-/.test(name))
        // proot keeps its status dir there; bwrap and unshare their overlay mount point (none for a plain root dir).
        if (driver === 'proot' || readdirSync(buildTmp).some(name => name.startsWith('step-'))) expect(ours().length).toBeGreaterThan(0)

        const next = u.kiln(['build', '--sandbox', driver, context('FROM oci:LAYOUT:base\nENV AFTER=kill\n')], { dataDir: data })
        expect(next.status, next.stderr).toBe(0)
        expect(readdirSync(buildTmp)).toEqual([])
        expect(readdirSync(join(data, 'build', 'locks'))).toEqual([])
        expect(ours()).toEqual([])
        expect(deadProotTemp()).toEqual([])
        // The store the killed build wrote into is whole.
        const verify = u.kiln(['store', 'verify', '--json'], { dataDir: data })
        expect(verify.status, verify.stdout + verify.stderr).toBe(0)
      })

      it('a step sees its own processes only, or none, and never kiln\'s environment', { timeout: 120_000 }, async () => {
        const secret = `kiln-secret-${marker()}`
        const r = u.kiln(['build', '--sandbox', driver, context([
          'FROM oci:LAYOUT:base',
          'RUN echo "procs=$(ls /proc 2>/dev/null | grep -c "^[0-9]")"; ' +
            'echo "init=$(tr "\\0" " " < /proc/1/cmdline 2>/dev/null)"; ' +
            'echo "environs=$(cat /proc/[0-9]*/environ 2>/dev/null | tr "\\0" "\\n" | grep -c KILN_E2E_SECRET)"; ' +
            'env | sort | sed "s/^/env: /"',
          ''
        ].join('\n'))], { dataDir: fresh('data'), env: { KILN_E2E_SECRET: secret } })
        expect(r.status, r.stderr).toBe(0)
        expect(r.stderr + r.stdout).not.toContain(secret)
        expect(r.stderr).toMatch(/^environs=0$/m)
        const procs = Number(/^procs=(\d+)$/m.exec(r.stderr)?.[1])
        if (driver === 'proot') {
          // No pid namespace: no /proc at all rather than the host's.
          expect(procs).toBe(0)
          expect(r.stderr).toMatch(/^init=$/m)
        } else {
          expect(procs).toBeGreaterThan(0)
          expect(procs).toBeLessThan(10)
          // pid 1 is the sandbox's own, never the host's init.
          const init = /^init=(.*)$/m.exec(r.stderr)?.[1]?.trim()
          expect(init).toMatch(/\S/)
          expect(init).not.toBe(readFileSync('/proc/1/cmdline', 'utf8').replaceAll('\0', ' ').trim())
        }
        const env = r.stderr.split('\n').filter(l => l.startsWith('env: ')).map(l => l.slice(5)).filter(l => !/^(PWD|SHLVL)=/.test(l))
        // bwrap adds its root emulation's apt setting (docs/building.md, "Root emulation"), every driver Docker's HOME
        // (the step's user's home: root's), nothing of kiln's.
        expect(env).toEqual([...(driver === 'bwrap' ? [`APT_CONFIG=${APT_CONFIG_PATH}`] : []), 'HOME=/root', 'PATH=/usr/local/bin:/usr/bin:/bin'])
      })
    })
  }

  for (const driver of ['bwrap', 'unshare'] as const) {
    // The restarted agent is sent SIGTERM as soon as it prints "listening": it must drain and exit 0, which
    // needs its signal handlers in place by then (src/node/agent.ts runAgentUntilStopped).
    it.skipIf(!haveTools(driver))(`a SIGKILLed kiln agent (${driver}) leaves no step of its job running, and its next start removes the job's scratch`, { timeout: 300_000 }, async () => {
      const agentData = fresh('agent')
      const requesterData = fresh('requester')
      const idOf = async (d: string): Promise<string> => (JSON.parse(await k.run(d, ['key', 'show', '--json'])) as { peerId: string }).peerId
      const [agentId, requesterId] = [await idOf(agentData), await idOf(requesterData)]
      await k.run(agentData, ['image', 'import', `oci:${layout}:base`, '-t', 'kiln-test/busybox:base'])
      await k.run(agentData, ['trust', 'add-peer', requesterId, '--roles', 'requester'])
      await k.run(requesterData, ['trust', 'add-peer', agentId, '--roles', 'builder'])
      const agentArgs = ['agent', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--platform', 'linux/amd64']
      const agent = k.start(agentArgs, agentData, { KILN_SANDBOX: driver })
      const addr = (await agent.waitFor(/listening: (\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+)/))[1] as string
      const m = marker()
      k.start(['submit', '--platform', 'linux/amd64', '--to', agentId, '--bootstrap', addr, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--offer-window', '2000', '--timeout', '120', context(`FROM kiln-test/busybox:base\n${LEAVES_DAEMONS(m)}\n`)], requesterData)
      await expect.poll(() => [processesWith(`sleep\u0000301${m}`).length, processesWith(`sleep\u0000302${m}`).length], { timeout: 120_000, interval: 50 }).toEqual([1, 1])
      const ms = await killAndWait(agent, m)
      console.log(`${driver}: the last step process was gone ${ms.toFixed(0)} ms after SIGKILL of kiln agent`)
      expect(ms).toBeLessThan(5_000)
      expect(readdirSync(join(agentData, 'jobs')).some(name => name.startsWith('ctx-'))).toBe(true)
      expect(readdirSync(join(agentData, 'build', 'tmp')).length).toBeGreaterThan(0)

      const again = k.start(['agent', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--no-jobs'], agentData)
      await again.waitFor(/listening: /)
      expect(readdirSync(join(agentData, 'jobs')).filter(name => name.startsWith('ctx-'))).toEqual([])
      expect(readdirSync(join(agentData, 'build', 'tmp'))).toEqual([])
      again.child.kill('SIGTERM')
      expect(await again.exited).toBe(0)
      const verify = u.kiln(['store', 'verify', '--json'], { dataDir: agentData })
      expect(verify.status, verify.stdout + verify.stderr).toBe(0)
    })
  }

  it('a build that starts while another runs on the same data dir keeps the running one\'s scratch', { timeout: 180_000 }, async () => {
    const data = fresh('data')
    const m = marker()
    const slow = k.start(['build', '--json', context(`FROM oci:LAYOUT:base\nRUN sleep 4; echo ${m} > /slow\n`)], data)
    // Its step runs (the marker is in the step's command line): its scratch is in use.
    await expect.poll(() => leftovers(m).length, { timeout: 120_000, interval: 50 }).toBeGreaterThan(0)
    expect(readdirSync(join(data, 'build', 'tmp')).length).toBeGreaterThan(0)
    const quick = u.kiln(['build', context('FROM oci:LAYOUT:base\nENV QUICK=1\n')], { dataDir: data })
    expect(quick.status, quick.stderr).toBe(0)
    expect(await slow.exited, slow.stderr()).toBe(0)
    expect((JSON.parse(slow.stdout()) as { digest: string }).digest).toMatch(/^sha256:/)
  })

  it('kiln agent and kiln up refuse to start with proot named while they would build for others', { timeout: 120_000 }, () => {
    for (const command of [['agent'], ['up', '--gateway-listen', '127.0.0.1:0']]) {
      const r = u.kiln([...command, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns'], { dataDir: fresh('data'), env: { KILN_SANDBOX: 'proot' }, timeoutMs: 60_000 })
      expect(r.status, `${command[0]}: ${r.stderr}`).toBe(2)
      expect(r.stderr).toMatch(/KILN_SANDBOX is proot: the proot sandbox cannot isolate build steps from kiln/)
      expect(r.stderr).toMatch(/--no-jobs/)
    }
  })

  it('kiln store df counts build snapshots and unpacked bases, and kiln gc removes them with their blobs', { timeout: 180_000 }, async () => {
    const data = fresh('data')
    const built = u.kiln(['build', context('FROM oci:LAYOUT:base\nRUN echo one > /one\nRUN echo two > /two\n')], { dataDir: data })
    expect(built.status, built.stderr).toBe(0)
    type Df = { buildCache: { snapshots: { count: number, bytes: number }, bases: { count: number, bytes: number }, bytes: number } }
    const df = (): Df => JSON.parse(u.kiln(['store', 'df', '--json'], { dataDir: data }).stdout) as Df
    const before = df()
    expect(before.buildCache.snapshots.count + before.buildCache.bases.count).toBeGreaterThanOrEqual(1)
    expect(before.buildCache.bytes).toBeGreaterThan(0)
    // Nothing names the image: gc takes its blobs, and with them what they backed.
    const gc = u.kiln(['gc', '--grace', '0', '--json'], { dataDir: data })
    expect(gc.status, gc.stderr).toBe(0)
    const r = JSON.parse(gc.stdout) as { removed: unknown[], buildCache: { removed: Array<{ path: string }>, skipped: boolean } }
    expect(r.removed.length).toBeGreaterThan(0)
    expect(r.buildCache.skipped).toBe(false)
    expect(r.buildCache.removed.length).toBe(before.buildCache.snapshots.count + before.buildCache.bases.count)
    expect(df().buildCache).toEqual({ snapshots: { count: 0, bytes: 0 }, bases: { count: 0, bytes: 0 }, cacheMounts: { count: 0, bytes: 0 }, bytes: 0 })
  })
})
