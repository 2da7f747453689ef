/**
 * The suite every Sandbox driver must pass (containerd's snapshots/testsuite
 * idea): exit codes, env, cwd, output, timeouts that kill the whole tree,
 * aborts, no network unless asked, overlay roots, extra mounts kept inside
 * the root, and nothing left behind.
 */
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, existsSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeTree } from '../../../src/builder/sandbox/index.ts'
import type { RunSpec, Sandbox, SandboxMount, SandboxRoot } from '../../../src/builder/sandbox/index.ts'
import { makeBusyboxRoot, mountsUnder, processesWith } from './fixtures.ts'
import { APT_CONFIG_PATH } from '../../../src/builder/sandbox/root-emulation.ts'

export function sandboxSuite (name: string, make: () => Promise<Sandbox>): void {
  describe(`sandbox driver ${name}`, () => {
    let sandbox: Sandbox
    let dir: string
    let base: string
    let n = 0

    beforeAll(async () => {
      sandbox = await make()
      dir = mkdtempSync(join(tmpdir(), `kiln-sbx-test-${name}-`))
      base = makeBusyboxRoot(join(dir, 'base'))
    })
    afterAll(async () => {
      expect(mountsUnder(dir)).toEqual([])
      await removeTree(dir)
    })

    /** A fresh root for one run: an overlay over the base when supported, else a copy-free plain dir. */
    function freshRoot (): SandboxRoot {
      n++
      if (sandbox.features.overlay) {
        const upper = join(dir, `upper-${n}`)
        const work = join(dir, `work-${n}`)
        mkdirSync(upper); mkdirSync(work)
        return { kind: 'overlay', lowers: [base], upper, work }
      }
      return { kind: 'dir', path: makeBusyboxRoot(join(dir, `root-${n}`)) }
    }

    async function sh (script: string, extra: Partial<RunSpec> = {}): Promise<{ code: number | null, out: string, err: string, timedOut: boolean }> {
      let out = ''
      let err = ''
      const r = await sandbox.run({
        argv: ['/bin/sh', '-c', script],
        env: { PATH: '/bin' },
        root: freshRoot(),
        onOutput: (s, c) => { if (s === 'stdout') out += Buffer.from(c).toString(); else err += Buffer.from(c).toString() },
        ...extra
      })
      return { code: r.exitCode, out, err, timedOut: r.timedOut }
    }

    it('reports the exit code and separates stdout from stderr', async () => {
      expect((await sh('exit 0')).code).toBe(0)
      const r = await sh('echo out; echo err >&2; exit 3')
      expect(r).toMatchObject({ code: 3, out: 'out\n', err: 'err\n', timedOut: false })
    })

    it('runs argv without a shell in between', async () => {
      let out = ''
      const r = await sandbox.run({ argv: ['/bin/echo', 'a b', '$HOME'], env: {}, root: freshRoot(), onOutput: (_s, c) => { out += Buffer.from(c).toString() } })
      expect(r.exitCode).toBe(0)
      expect(out).toBe('a b $HOME\n')
    })

    it('gives the step exactly the environment asked for (and bwrap\'s root emulation: APT_CONFIG), as uid 0', async () => {
      const r = await sh('env | sort; id -u', { env: { PATH: '/bin', FOO: 'bar baz' } })
      const emulation = sandbox.driver === 'bwrap' ? [`APT_CONFIG=${APT_CONFIG_PATH}`] : []
      expect(r.out.split('\n').filter(l => l !== '' && !l.startsWith('PWD=') && !l.startsWith('SHLVL='))).toEqual([...emulation, 'FOO=bar baz', 'PATH=/bin', '0'])
      // A recipe's own APT_CONFIG wins over kiln's.
      expect((await sh('echo "$APT_CONFIG"', { env: { PATH: '/bin', APT_CONFIG: '/etc/mine.conf' } })).out).toBe('/etc/mine.conf\n')
    })

    it('emulates root when the driver says so: chown to other ids, su (setgroups, setgid, setuid) and device mknod succeed; else they fail', async () => {
      const users = "printf 'root:x:0:0::/:/bin/sh\\nu:x:1:1::/:/bin/sh\\n' > /etc/passwd && printf 'root:x:0:\\nu:x:1:\\n' > /etc/group"
      const calls = ['touch /tmp/f && chown 1:1 /tmp/f', 'chgrp 2 /tmp/f', 'su -s /bin/sh u -c true', 'mknod /tmp/null c 1 3']
      const r = await sh(`${users} && for c in ${calls.map(c => `'${c}'`).join(' ')}; do sh -c "$c" 2>/dev/null; echo "$?"; done; ls -n /tmp/f`)
      expect(r.code).toBe(0)
      const codes = r.out.trim().split('\n').slice(0, calls.length)
      expect(codes).toEqual(calls.map(() => sandbox.features.rootEmulation ? '0' : '1'))
      // Faked by the filter, not done: the file stays the step's root's (proot run by root really chowns).
      if (sandbox.driver === 'bwrap') expect(r.out).toMatch(/ 0 +0 +0 [A-Z]/)
    })

    it('keeps the step\'s environment from the host programs that start it (a recipe\'s LD_PRELOAD loads nothing on the host)', async () => {
      // A dynamically linked host program (bwrap, unshare, proot, sh) given this would have ld.so complain on stderr.
      const r = await sh('echo "preload=$LD_PRELOAD"', { env: { PATH: '/bin', LD_PRELOAD: '/kiln-no-such-dir/evil.so' } })
      expect(r.out).toBe('preload=/kiln-no-such-dir/evil.so\n')
      expect(r.err).not.toContain('LD_PRELOAD')
      expect(r.code).toBe(0)
    })

    it('starts in the working directory, creating it when missing', async () => {
      const r = await sh('pwd', { cwd: '/work/dir' })
      expect(r.out).toBe('/work/dir\n')
    })

    it('kills the whole process tree on timeout and leaves no process behind', async () => {
      const marker = String(9000 + Math.floor(Math.random() * 900))
      const started = Date.now()
      const r = await sh(`sleep ${marker} & sleep ${marker}1; echo never`, { timeoutMs: 300 })
      expect(r.timedOut).toBe(true)
      expect(r.out).toBe('')
      expect(Date.now() - started).toBeLessThan(5000)
      await new Promise(resolve => setTimeout(resolve, 100))
      expect(processesWith(`sleep\u0000${marker}`)).toEqual([])
    })

    it('ends when the step\'s command ends, killing what it left running (setsid and double-forked daemons too), and adds nothing to a plain root', async () => {
      const marker = String(7000 + Math.floor(Math.random() * 900))
      const root = freshRoot()
      const started = Date.now()
      const r = await sandbox.run({ argv: ['/bin/sh', '-c', `sleep ${marker} & setsid sleep ${marker}2 & setsid sh -c 'sleep ${marker}3 &' & echo left; exit 4`], env: { PATH: '/bin' }, root, timeoutMs: 30_000 })
      expect(r).toMatchObject({ exitCode: 4, timedOut: false })
      expect(Date.now() - started).toBeLessThan(20_000)
      await new Promise(resolve => setTimeout(resolve, 100))
      expect(processesWith(`sleep\u0000${marker}`)).toEqual([])
      if (root.kind === 'dir') expect(readdirSync(root.path).sort()).toEqual(['bin', 'etc', 'tmp'])
    })

    it('kills the tree and rejects when aborted', async () => {
      const marker = String(8000 + Math.floor(Math.random() * 900))
      const ac = new AbortController()
      setTimeout(() => { ac.abort(new Error('stop')) }, 200)
      await expect(sh(`sleep ${marker}`, { signal: ac.signal })).rejects.toThrow('stop')
      await new Promise(resolve => setTimeout(resolve, 100))
      expect(processesWith(`sleep\u0000${marker}`)).toEqual([])
    })

    it('has no network unless asked for', async (ctx) => {
      if (!sandbox.features.networkIsolation) { ctx.skip(); return }
      const server = createServer((_req, res) => { res.end('reachable') })
      await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
      const port = (server.address() as AddressInfo).port
      try {
        const off = await sh(`echo GET | nc 127.0.0.1 ${port}`)
        expect(off.code).not.toBe(0)
        expect(off.out).toBe('')
        const on = await sh(`printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 ${port}`, { network: true })
        expect(on.out).toContain('reachable')
      } finally {
        await new Promise(resolve => server.close(resolve))
      }
    })

    it('records changes in the upper dir of an overlay root, deletions as whiteouts', async (ctx) => {
      if (!sandbox.features.overlay) { ctx.skip(); return }
      const root = freshRoot()
      if (root.kind !== 'overlay') throw new Error('unreachable')
      const r = await sandbox.run({ argv: ['/bin/sh', '-c', 'echo new > /etc/x && rm /bin/false && mkdir -p /opt/a'], env: { PATH: '/bin' }, root })
      expect(r.exitCode).toBe(0)
      expect(readFileSync(join(root.upper, 'etc/x'), 'utf8')).toBe('new\n')
      const wh = lstatSync(join(root.upper, 'bin/false'))
      expect(wh.isCharacterDevice() && wh.rdev === 0).toBe(true)
      expect(lstatSync(join(root.upper, 'opt/a')).isDirectory()).toBe(true)
      expect(existsSync(join(base, 'bin/false'))).toBe(true)
      expect(existsSync(join(root.upper, 'proc'))).toBe(false)
      expect(existsSync(join(root.upper, 'dev'))).toBe(false)
    })

    it('mounts extra binds and tmpfs at targets resolved in the root, leaving no mount point behind', async () => {
      const host = join(dir, `mount-src-${++n}`)
      mkdirSync(host)
      writeFileSync(join(host, 'in'), 'from host\n')
      const file = join(dir, `mount-file-${n}`)
      writeFileSync(file, 'secret\n')
      const root = freshRoot()
      const mounts: SandboxMount[] = [
        { kind: 'bind', source: host, target: '/mnt/deep/rw', readOnly: false },
        { kind: 'bind', source: file, target: '/run/secrets/s', readOnly: sandbox.features.readOnlyMounts },
        { kind: 'tmpfs', target: '/scratch', sizeBytes: 1024 * 1024 }
      ]
      let out = ''
      const r = await sandbox.run({
        argv: ['/bin/sh', '-c', 'cat /mnt/deep/rw/in /run/secrets/s && echo out > /mnt/deep/rw/out && echo t > /scratch/t && cat /scratch/t; { echo more >> /run/secrets/s; } 2>/dev/null || echo ro'],
        env: { PATH: '/bin' }, root, mounts,
        onOutput: (stream, c) => { if (stream === 'stdout') out += Buffer.from(c).toString() }
      })
      expect(r.exitCode).toBe(0)
      expect(out).toBe(`from host\nsecret\nt\n${sandbox.features.readOnlyMounts ? 'ro\n' : ''}`)
      expect(readFileSync(join(host, 'out'), 'utf8')).toBe('out\n')
      const rootDir = root.kind === 'overlay' ? root.upper : root.path
      for (const p of ['mnt', 'run', 'scratch']) expect(existsSync(join(rootDir, p)), p).toBe(false)
    })

    it('keeps a mount inside the root when the image has a symlink on the way out', async () => {
      const host = join(dir, `mount-src-${++n}`)
      mkdirSync(host)
      const root = freshRoot()
      const top = root.kind === 'overlay' ? root.lowers[0] ?? '' : root.path
      const outside = join(dir, `outside-${n}`)
      mkdirSync(outside)
      // A link as an image could hold it: absolute, pointing at a host path.
      const link = root.kind === 'overlay' ? join(dir, `lower-${n}`) : top
      if (root.kind === 'overlay') { mkdirSync(link); root.lowers.unshift(link) }
      symlinkSync(outside, join(link, 'escape'))
      const r = await sandbox.run({ argv: ['/bin/sh', '-c', 'echo x > /escape/t/f'], env: { PATH: '/bin' }, root, mounts: [{ kind: 'bind', source: host, target: '/escape/t', readOnly: false }] })
      expect(r.exitCode).toBe(0)
      expect(readFileSync(join(host, 'f'), 'utf8')).toBe('x\n')
      expect(existsSync(join(outside, 't'))).toBe(false)
    })

    it('sees /dev/null inside, and its own processes in /proc but no host process', async () => {
      expect((await sh('echo x > /dev/null && echo ok')).out).toBe('ok\n')
      const r = await sh('cat /proc/1/cmdline | tr "\\0" " "; echo; ls /proc | grep -c "^[0-9]"')
      if (!sandbox.features.processIsolation) {
        // proot: no pid namespace, so no /proc at all rather than the host's.
        expect(r.out).toBe('\n0\n')
        return
      }
      const [init, count] = r.out.split('\n')
      // pid 1 is the sandbox's own (bwrap's init, or the step), never the host's; a handful of processes, not the host's.
      expect(init).not.toBe(readFileSync('/proc/1/cmdline', 'utf8').replaceAll('\0', ' '))
      expect(init).toMatch(/bwrap|sh/)
      expect(Number(count)).toBeLessThan(10)
    })
  })
}
