/**
 * `kiln run` end to end as an unprivileged user (uid 65534 when the tests
 * run as root): an image built on the busybox base (test/helpers/busybox-base.ts)
 * with a Cmd, an Env and a user in /etc/passwd, run in the default sandbox
 * and, for the user mapping and bind mounts, in each driver that works here.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeBusyboxBase } from '../../helpers/busybox-base.ts'
import { haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import { makeContext } from '../../helpers/context.ts'
import type { KilnRun, Unprivileged } from '../../helpers/unprivileged.ts'

const IMAGE = 'e2e/run:1'
/** An architecture other than the node's, for which no emulator is registered on a test machine. */
const FOREIGN_ARCH = process.arch === 'riscv64' ? 's390x' : 'riscv64'
const DOCKERFILE = (layout: string): string => `FROM oci:${layout}:base
COPY passwd /etc/passwd
COPY group /etc/group
ENV GREETING=hello
CMD ["sh", "-c", "echo default cmd as $(id -u) in $(pwd)"]
`

/** The interface names of a /proc/net/dev text, sorted. */
const netDevices = (text: string): string[] => text.split('\n').slice(2).map(l => l.split(':')[0]?.trim() ?? '').filter(n => n !== '').sort()

describe.skipIf(!haveTools('setpriv', 'busybox', 'umoci', 'bwrap'))('kiln run', () => {
  let u: Unprivileged
  const run = (args: string[], options: { env?: Record<string, string>, input?: string } = {}): KilnRun => u.kiln(['run', ...args], { timeoutMs: 120_000, ...options })

  beforeAll(() => {
    u = makeUnprivileged()
    const layout = makeBusyboxBase(u)
    const ctx = makeContext(u, {
      Dockerfile: DOCKERFILE(layout),
      passwd: 'root:x:0:0:root:/root:/bin/sh\nresearcher:x:1000:1001::/home/researcher:/bin/sh\n',
      group: 'root:x:0:\nlab:x:1001:\nstaff:x:50:\n'
    })
    const b = u.kiln(['build', '-t', IMAGE, ctx], { timeoutMs: 300_000 })
    expect(b.status, b.stderr).toBe(0)
    const t = u.kiln(['tag', IMAGE, 'docker.io/library/e2e-alias:2'])
    expect(t.status, t.stderr).toBe(0)
    // An image whose config names a user, and one for an architecture this node cannot run.
    const userCtx = makeContext(u, { Dockerfile: `FROM ${IMAGE}\nUSER researcher\nWORKDIR /home/researcher\n` }, {}, 'user-ctx')
    const b2 = u.kiln(['build', '-t', 'e2e/run-user:1', userCtx], { timeoutMs: 300_000 })
    expect(b2.status, b2.stderr).toBe(0)
    execFileSync('umoci', ['config', '--image', `${layout}:base`, '--tag', 'foreign', '--architecture', FOREIGN_ARCH], { stdio: 'ignore' })
    u.give(layout)
    const f = u.kiln(['image', 'import', `oci:${layout}:foreign`, '-t', 'e2e/foreign:1'])
    expect(f.status, f.stderr).toBe(0)
  }, 400_000)
  afterAll(() => { u?.cleanup() })

  it('runs the image\'s Cmd as root of the namespace, in /', () => {
    const r = run([IMAGE])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toBe('default cmd as 0 in /\n')
  }, 120_000)

  it('runs a command given after the image, its flags its own (sh -c, not kiln\'s --config)', () => {
    const r = run([IMAGE, 'sh', '-c', 'echo "$GREETING from $0"', 'override'])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toBe('hello from override\n')
  }, 120_000)

  it('finds an image by its docker.io alias', () => {
    const r = run(['e2e-alias:2', 'echo', 'aliased'])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toBe('aliased\n')
  }, 120_000)

  it('sets variables with -e NAME=VALUE, -e NAME from kiln\'s environment, and --env-file', () => {
    const envFile = join(u.work, 'run.env')
    writeFileSync(envFile, '# a comment\nFROMFILE=file value\n\nGREETING=from file\n')
    u.give(envFile)
    const r = run(['--env-file', envFile, '-e', 'GREETING=overridden', '-e', 'FROMHOST', '-e', 'UNSET_HERE', IMAGE, 'sh', '-c', 'echo "$GREETING|$FROMHOST|$FROMFILE|${UNSET_HERE-unset}"'], { env: { FROMHOST: 'outside' } })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toBe('overridden|outside|file value|unset\n')
  }, 120_000)

  it('changes the working dir with -w, making it when missing', () => {
    expect(run(['-w', '/tmp', IMAGE, 'pwd']).stdout).toBe('/tmp\n')
    const r = run(['-w', '/work/here', IMAGE, 'pwd'])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toBe('/work/here\n')
  }, 120_000)

  it('passes stdin with -i, and /dev/null without', () => {
    const r = run(['-i', IMAGE, 'sh', '-c', 'read line; echo "got $line"'], { input: 'piped text\n' })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toBe('got piped text\n')
    expect(run([IMAGE, 'cat'], { input: 'not passed\n' }).stdout).toBe('')
  }, 120_000)

  it('makes kiln\'s exit status the command\'s', () => {
    expect(run([IMAGE, 'sh', '-c', 'exit 7']).status).toBe(7)
    expect(run([IMAGE, 'false']).status).toBe(1)
    // Killed by a signal: 128 + N, as shells and podman report it.
    expect(run([IMAGE, 'sh', '-c', 'kill -TERM $$']).status).toBe(143)
  }, 120_000)

  it('keeps nothing the command wrote in the root, and unpacks the image once', () => {
    expect(run([IMAGE, 'sh', '-c', 'echo x > /persist && cat /persist']).stdout).toBe('x\n')
    const unpacked = (): Array<[string, number]> => readdirSync(join(u.dataDir, 'build', 'rootfs')).filter(n => !n.startsWith('.')).map(n => [n, statSync(join(u.dataDir, 'build', 'rootfs', n)).ino])
    const before = unpacked()
    const r = run([IMAGE, 'ls', '/persist'])
    expect(r.status).not.toBe(0)
    // The same unpacked dirs (by inode), none added: the second run re-extracted nothing.
    expect(unpacked()).toEqual(before)
    expect(before.length).toBeGreaterThan(0)
    expect(readdirSync(join(u.dataDir, 'build', 'tmp'))).toEqual([])
  }, 120_000)

  it('replaces the entrypoint with --entrypoint (a program, or a JSON array), the image\'s Cmd then dropped', () => {
    const r = run(['--entrypoint', '/bin/echo', IMAGE, 'from', 'echo'])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toBe('from echo\n')
    expect(run(['--entrypoint', '/bin/echo', IMAGE]).stdout).toBe('\n')
    const json = run(['--entrypoint', '["sh", "-c"]', IMAGE, 'echo "$GREETING json"'])
    expect(json.status, json.stderr).toBe(0)
    expect(json.stdout).toBe('hello json\n')
  }, 120_000)

  it('runs as the image\'s USER in its WORKDIR by default; -u overrides it', () => {
    const r = run(['e2e/run-user:1', 'sh', '-c', 'echo "$(id -u) $(pwd) $HOME"'])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toBe('1000 /home/researcher /home/researcher\n')
    expect(run(['-u', 'root', 'e2e/run-user:1', 'id', '-u']).stdout).toBe('0\n')
  }, 120_000)

  it('refuses an image for another architecture with no emulator, saying so', (t) => {
    if (existsSync(`/proc/sys/fs/binfmt_misc/qemu-${FOREIGN_ARCH}`)) { t.skip(); return }
    const r = run(['e2e/foreign:1', 'true'])
    expect(r.status).toBe(2)
    expect(r.stderr).toContain(`the image is for linux/${FOREIGN_ARCH}`)
    expect(r.stderr).toContain('no emulator registered')
    expect(r.stderr).toContain('hint:')
  }, 120_000)

  it('gives loopback only by default, the host\'s network with --network=host', () => {
    const links = (args: string[]): string[] => {
      const r = run([...args, IMAGE, 'cat', '/proc/net/dev'])
      expect(r.status, r.stderr).toBe(0)
      return netDevices(r.stdout)
    }
    expect(links([])).toEqual(['lo'])
    expect(links(['--network=host'])).toEqual(netDevices(readFileSync('/proc/net/dev', 'utf8')))
  }, 120_000)

  it('refuses a missing image with a clear error', () => {
    const r = run(['no/such-image:1', 'true'])
    expect(r.status).toBe(3)
    expect(r.stderr).toContain('no image named no/such-image:1 in the local store')
    expect(r.stderr).toContain('hint:')
  }, 120_000)

  it('refuses a user the image does not know, and bad flags, saying what to give', () => {
    const user = run(['-u', 'nobody-here', IMAGE, 'true'])
    expect(user.status).toBe(2)
    expect(user.stderr).toContain('no user nobody-here in the image\'s /etc/passwd')
    const net = run(['--network', 'bridge', IMAGE, 'true'])
    expect(net.status).toBe(2)
    expect(net.stderr).toContain('expected none or host')
    const vol = run(['-v', 'data', IMAGE, 'true'])
    expect(vol.status).toBe(2)
    expect(vol.stderr).toContain('expected HOST:CTR')
  }, 120_000)

  it('resolves -u names in the image\'s /etc/passwd and /etc/group, with HOME', () => {
    const r = run(['-u', 'researcher', IMAGE, 'sh', '-c', 'echo "$(id -u):$(id -g) $HOME"'])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toBe('1000:1001 /home/researcher\n')
    const g = run(['-u', 'researcher:staff', IMAGE, 'id', '-g'])
    expect(g.stdout).toBe('50\n')
  }, 120_000)

  describe.each(['bwrap', 'unshare', 'proot'])('in the %s sandbox', (driver) => {
    const env = { KILN_SANDBOX: driver }
    let works: boolean | undefined
    /** Whether the driver runs here (a node may lack user namespaces or proot); under CI it must. */
    const usable = (): boolean => {
      if (works !== undefined) return works
      const probe = u.kiln(['run', '--sandbox', driver, IMAGE, 'true'], { timeoutMs: 120_000 })
      works = probe.status === 0
      if (!works && process.env.CI === 'true') throw new Error(`the ${driver} sandbox does not work here: ${probe.stderr}`)
      if (!works) console.warn(`skipping ${driver}: ${probe.stderr.trim()}`)
      return works
    }

    it('runs as -u 1000 (id -u prints 1000, its group from /etc/passwd), files the node\'s user owns showing as 1000', (t) => {
      if (!usable()) { t.skip(); return }
      const r = run(['-u', '1000', IMAGE, 'sh', '-c', 'id -u; id -g; stat -c %u /bin/busybox'], { env })
      expect(r.status, r.stderr).toBe(0)
      expect(r.stdout).toBe('1000\n1001\n1000\n')
      // A uid the image does not list runs with group 0, as podman does.
      expect(run(['-u', '2000', IMAGE, 'sh', '-c', 'echo "$(id -u):$(id -g) $HOME"'], { env }).stdout).toBe('2000:0 /\n')
    }, 120_000)

    it('passes stdin with -i', (t) => {
      if (!usable()) { t.skip(); return }
      const r = run(['-i', IMAGE, 'sh', '-c', 'read line; echo "got $line"'], { env, input: `through ${driver}\n` })
      expect(r.status, r.stderr).toBe(0)
      expect(r.stdout).toBe(`got through ${driver}\n`)
    }, 120_000)

    it('binds a host dir read-write with -v: the file appears on the host', (t) => {
      if (!usable()) { t.skip(); return }
      const vol = join(u.work, `vol-${driver}`)
      mkdirSync(vol)
      writeFileSync(join(vol, 'in.txt'), 'from the host\n')
      u.give(vol)
      const r = run(['-v', `${vol}:/data`, IMAGE, 'sh', '-c', 'cat /data/in.txt; echo "written by $(id -u)" > /data/out.txt'], { env })
      expect(r.status, r.stderr).toBe(0)
      expect(r.stdout).toBe('from the host\n')
      expect(readFileSync(join(vol, 'out.txt'), 'utf8')).toBe('written by 0\n')
    }, 120_000)

    it('binds read-only with -v HOST:CTR:ro: a write fails and the host file stays', (t) => {
      if (!usable()) { t.skip(); return }
      const vol = join(u.work, `ro-${driver}`)
      mkdirSync(vol)
      u.give(vol)
      const r = run(['-v', `${vol}:/data:ro`, IMAGE, 'sh', '-c', 'echo x > /data/out.txt'], { env })
      if (driver === 'proot') {
        // proot cannot make a read-only bind: refused before anything runs.
        expect(r.status).toBe(2)
        expect(r.stderr).toContain('cannot make a read-only bind mount')
      } else {
        expect(r.status).not.toBe(0)
        expect(r.stderr).toMatch(/Read-only file system/i)
      }
      expect(existsSync(join(vol, 'out.txt'))).toBe(false)
    }, 120_000)
  })
})
