/**
 * `npm run demo` (`kiln demo`) end to end, as the unprivileged user of
 * test/helpers/unprivileged.ts: the narration's key lines (the job is
 * offered by one agent, declined by the two without a GPU, awarded to
 * gamma, the one with `gpu=demo`; the image pulled peer to peer and through
 * the gateway has one digest; running it prints what the job wrote), and
 * that the demo leaves no process and no work dir behind, also on Ctrl-C.
 * A *leftover* is a process whose environment or command line names the
 * demo's work dir: every node of the demo has its data dir there.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { kilnProcs } from '../../helpers/kiln-procs.ts'
import type { KilnProcs } from '../../helpers/kiln-procs.ts'

function leftovers (dir: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      const seen = readFileSync(`/proc/${entry}/environ`, 'utf8') + readFileSync(`/proc/${entry}/cmdline`, 'utf8')
      if (seen.includes(dir)) pids.push(Number(entry))
    } catch { /* exited, or not ours to read */ }
  }
  return pids
}

const workDirOf = (stdout: string): string => /a build farm of three agents on this machine, in (\S+)/.exec(stdout)?.[1] ?? '/'

describe.skipIf(!haveTools('setpriv', 'busybox', 'skopeo', 'bwrap'))('npm run demo (kiln demo): a farm of three agents', () => {
  let u: Unprivileged
  let k: KilnProcs

  beforeAll(() => {
    u = makeUnprivileged()
    k = kilnProcs(u)
  })

  afterAll(async () => {
    await k?.stopAll()
    u?.cleanup()
  }, 60_000)

  it('gamma alone offers, is awarded the job, and both pulls give one digest; nothing is left behind', async () => {
    const r = await k.exec(['demo'], u.dataDir, 300_000)
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
    const out = r.stdout
    const gamma = /^gamma\s+(12D3\S+)\s+agent with gpu=demo$/m.exec(out)?.[1]
    expect(gamma, out).toBeDefined()
    const others = ['alpha', 'beta'].map(name => new RegExp(`^${name}\\s+(12D3\\S+)\\s`, 'm').exec(out)?.[1] ?? name)
    const short = (id: string): string => `${id.slice(0, 8)}…${id.slice(-6)}`
    // Offers from one agent only: gamma's; the two others declined for want of the capability.
    expect([...out.matchAll(/\] offer from (\S+)/g)].map(m => m[1])).toEqual([short(gamma ?? '')])
    for (const id of others) expect(out).toContain(`] ${short(id)} declined: lacks gpu`)
    expect(out).toMatch(new RegExp(`\\] awarded to ${gamma ?? '-'}$`, 'm'))
    expect(out).toContain('The job was awarded to gamma (agent with gpu=demo)')
    // The live log of the build came back to the requester.
    expect(out).toMatch(/\] \[2\/4\] RUN \/bin\/sh -c echo/)
    const p2p = /^digest pulled peer to peer: +(sha256:[0-9a-f]{64})$/m.exec(out)?.[1]
    const gateway = /^digest through the gateway: +(sha256:[0-9a-f]{64})$/m.exec(out)?.[1]
    expect(p2p).toMatch(/^sha256:/)
    expect(gateway).toBe(p2p)
    expect(out).toMatch(/pulled (sha256:[0-9a-f]{64}): 5 blobs/)
    // Run as kiln run does, in the builder's sandbox: the file the job made.
    expect(out).toMatch(/\$ kiln run demo\/hello:1 .*# cat \/srv\/message\.txt, .*\n {4}Hello from an image built by a kiln farm, without root\.\n {4}built as uid 0 in a user namespace on /)
    const work = workDirOf(out)
    expect(work).toContain('kiln-demo-')
    expect(out).toContain(`farm stopped; removed ${work}`)
    expect(existsSync(work)).toBe(false)
    expect(leftovers(work)).toEqual([])
  }, 320_000)

  it('Ctrl-C once the farm is up stops every agent and removes the work dir', async () => {
    const p = k.start(['demo'], u.dataDir)
    await p.waitFor(/^gamma\s+12D3\S+\s+agent with gpu=demo$/m, 180_000)
    const work = workDirOf(p.stdout())
    expect(leftovers(work).length).toBeGreaterThanOrEqual(3)
    p.child.kill('SIGINT')
    const code = await p.exited
    expect(code).not.toBe(0)
    expect(p.stderr()).toContain('interrupted')
    expect(p.stdout()).toContain(`farm stopped; removed ${work}`)
    expect(existsSync(work)).toBe(false)
    expect(leftovers(work)).toEqual([])
  }, 240_000)
})
