/**
 * `kiln build` with several --platform values, as an unprivileged user: a
 * recipe without RUN builds for any platform into one OCI index that -t
 * names, whose root filesystems --output type=local lays out per platform;
 * a RUN for an architecture this node cannot run fails with a message that
 * names kiln submit when no emulator is registered, and builds under the
 * emulator when one is (skipped, visibly, where there is none).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeBusyboxBase } from '../../helpers/busybox-base.ts'
import { haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { makeContext } from '../../helpers/context.ts'

/** A usable aarch64 user-mode emulator: an enabled binfmt_misc entry with the F flag (it works inside a user namespace). */
function arm64Emulated (): boolean {
  const dir = '/proc/sys/fs/binfmt_misc'
  if (!existsSync(dir)) return false
  return readdirSync(dir).filter(n => n.includes('aarch64')).some(n => {
    const text = readFileSync(join(dir, n), 'utf8')
    return /^enabled$/m.test(text) && /^flags: ?\S*F/m.test(text)
  })
}
const emulated = arm64Emulated()
const host = process.arch === 'arm64' ? 'linux/arm64' : 'linux/amd64'
const foreign = process.arch === 'arm64' ? 'linux/amd64' : 'linux/arm64'

describe.skipIf(!haveTools('setpriv', 'umoci', 'busybox', 'bwrap'))('kiln build for several platforms', () => {
  let u: Unprivileged
  let layout: string
  const context = (dockerfile: string): string => makeContext(u, { Dockerfile: dockerfile, 'a.txt': 'hello\n' }, { LAYOUT: layout })

  beforeAll(() => {
    u = makeUnprivileged()
    layout = makeBusyboxBase(u)
  }, 120_000)
  afterAll(() => { u?.cleanup() })

  it('builds each platform of a recipe without RUN into an index that -t names, and lays each root filesystem out', () => {
    const out = join(u.work, 'rootfs')
    const r = u.kiln(['build', '--json', '-t', 'multi/app:1', '--platform', `${host},${foreign}`, '--output', `type=local,dest=${out}`, context('FROM scratch\nCOPY a.txt /a.txt\n')], { timeoutMs: 180_000 })
    expect(r.status, r.stderr).toBe(0)
    const summary = JSON.parse(r.stdout) as { digest: string, mediaType: string, platforms: Array<{ platform: string }> }
    expect(summary.mediaType).toBe('application/vnd.oci.image.index.v1+json')
    expect(summary.platforms.map(p => p.platform)).toEqual([host, foreign])
    const inspect = JSON.parse(u.kiln(['image', 'inspect', 'multi/app:1', '--json']).stdout) as { digest: string, platforms: string[] }
    expect(inspect.digest).toBe(summary.digest)
    expect(inspect.platforms.map(p => p.replace(/\/v8$/, ''))).toEqual([host, foreign])
    const dirs = readdirSync(out).sort()
    expect(dirs).toHaveLength(2)
    for (const d of dirs) expect(readFileSync(join(out, d, 'a.txt'), 'utf8')).toBe('hello\n')
  }, 200_000)

  it.skipIf(emulated)(`a RUN for ${foreign} without an emulator fails before anything is built, naming kiln submit (no binfmt_misc emulator here)`, () => {
    const r = u.kiln(['build', '--platform', `${host},${foreign}`, context('FROM oci:LAYOUT:base\nRUN echo built\n')], { timeoutMs: 180_000, env: { KILN_SANDBOX: 'bwrap' } })
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(new RegExp(`RUN for ${foreign} needs an emulator registered in /proc/sys/fs/binfmt_misc`))
    expect(r.stderr).toContain(`hint: kiln submit --platform ${host},${foreign} sends the build to agents`)
    // Checked before any platform is built: the host's is not built first only to be thrown away.
    expect(r.stdout).not.toMatch(/platform |RUN echo built/)
  }, 200_000)

  it.skipIf(!emulated)(`a RUN for ${foreign} goes through the registered emulator (needs a binfmt_misc aarch64 entry with the F flag)`, () => {
    const r = u.kiln(['build', '--json', '--platform', `${host},${foreign}`, context('FROM oci:LAYOUT:base\nRUN echo built > /built\n')], { timeoutMs: 180_000, env: { KILN_SANDBOX: 'bwrap' } })
    expect(r.status, r.stderr).toBe(0)
    expect((JSON.parse(r.stdout) as { platforms: Array<{ platform: string }> }).platforms.map(p => p.platform)).toEqual([host, foreign])
  }, 200_000)
})
