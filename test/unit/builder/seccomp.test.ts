/**
 * The root-emulation seccomp program (src/builder/sandbox/seccomp.ts): read
 * back by a small classic-BPF interpreter for each architecture it knows and
 * for ones it does not, then loaded for real by bwrap as uid 65534.
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { AUDIT_ARCH, FAKED_MKNOD, FAKED_SYSCALLS, rootEmulationFilter, rootEmulationProgram, SKIPPED_SYNC_SYSCALLS } from '../../../src/builder/sandbox/seccomp.ts'
import { runProcess } from '../../../src/builder/sandbox/process.ts'
import { findTool, haveTools } from '../../helpers/tools.ts'
import { isRoot, UNPRIVILEGED_UID } from '../../helpers/unprivileged.ts'
import { makeBusyboxRoot } from './fixtures.ts'

const ALLOW = 0x7fff0000
const FAKE = 0x00050000
const S_IFCHR = 0o020000
const S_IFBLK = 0o060000
const S_IFIFO = 0o010000
const S_IFREG = 0o100000

/** Runs the program on one `struct seccomp_data` (nr, arch, low halves of args) and returns its verdict. */
function verdict (arch: number, nr: number, args: number[] = []): number {
  const program = rootEmulationProgram()
  const word = (offset: number): number => {
    if (offset === 0) return nr >>> 0
    if (offset === 4) return arch >>> 0
    if (offset >= 16 && (offset - 16) % 8 === 0) return (args[(offset - 16) / 8] ?? 0) >>> 0
    throw new Error(`unexpected load at ${offset}`)
  }
  let a = 0
  for (let pc = 0; pc < program.length;) {
    const x = program[pc] as (typeof program)[number]
    switch (x.code) {
      case 0x20: a = word(x.k); pc++; break
      case 0x54: a = (a & x.k) >>> 0; pc++; break
      case 0x15: pc += 1 + (a === x.k ? x.jt : x.jf); break
      case 0x06: return x.k
      default: throw new Error(`unexpected opcode ${x.code}`)
    }
  }
  throw new Error('fell off the end of the program')
}

describe('root emulation seccomp program', () => {
  it('fakes each listed call on its architecture, and lets other calls through', () => {
    for (const arch of Object.keys(AUDIT_ARCH) as Array<keyof typeof AUDIT_ARCH>) {
      for (const [name, nr] of Object.entries(FAKED_SYSCALLS[arch])) expect([arch, name, verdict(AUDIT_ARCH[arch], nr)]).toEqual([arch, name, FAKE])
      for (const [name, nr] of Object.entries(SKIPPED_SYNC_SYSCALLS[arch])) expect([arch, name, verdict(AUDIT_ARCH[arch], nr)]).toEqual([arch, name, FAKE])
    }
    // getuid, openat, write on x86_64; getuid and openat on aarch64.
    for (const nr of [102, 257, 1]) expect(verdict(AUDIT_ARCH.x86_64, nr)).toBe(ALLOW)
    for (const nr of [174, 56]) expect(verdict(AUDIT_ARCH.aarch64, nr)).toBe(ALLOW)
  })

  it('uses each architecture\'s own numbers: x86_64 chown (92) is another call on aarch64', () => {
    expect(verdict(AUDIT_ARCH.x86_64, 92)).toBe(FAKE)
    expect(verdict(AUDIT_ARCH.aarch64, 92)).toBe(ALLOW)
    expect(verdict(AUDIT_ARCH.x86_64, 54)).toBe(ALLOW)
  })

  it('fakes x32 calls (bit 30) and passes unknown architectures (i386 chown32, 32-bit arm) through', () => {
    expect(verdict(AUDIT_ARCH.x86_64, 0x40000000 | 92)).toBe(FAKE)
    expect(verdict(0x40000003, 212)).toBe(ALLOW)
    expect(verdict(0x40000028, 212)).toBe(ALLOW)
  })

  it('fakes mknod of devices only: fifos and regular files are made for real', () => {
    for (const arch of Object.keys(AUDIT_ARCH) as Array<keyof typeof AUDIT_ARCH>) {
      for (const m of FAKED_MKNOD[arch]) {
        const at = (mode: number): number => verdict(AUDIT_ARCH[arch], m.nr, Array.from({ length: 3 }, (_v, i) => i === m.modeArg ? mode : 0))
        expect([at(S_IFCHR | 0o600), at(S_IFBLK | 0o600)]).toEqual([FAKE, FAKE])
        expect([at(S_IFIFO | 0o600), at(S_IFREG | 0o644)]).toEqual([ALLOW, ALLOW])
      }
    }
  })

  it('encodes 8 bytes per instruction', () => {
    expect(rootEmulationFilter().byteLength).toBe(8 * rootEmulationProgram().length)
  })
})

describe.skipIf(!haveTools('bwrap', 'busybox', 'setpriv'))('the program loaded by bwrap, as an unprivileged user', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-seccomp-test-'))
  afterAll(() => { rmSync(dir, { recursive: true, force: true }) })
  const root = makeBusyboxRoot(join(dir, 'root'))
  mkdirSync(join(root, 'dev'))
  chmodSync(dir, 0o755)
  if (isRoot()) chownSync(join(root, 'tmp'), UNPRIVILEGED_UID, UNPRIVILEGED_UID)

  const as65534 = async (withFilter: boolean, script: string): Promise<{ code: number | null, out: string }> => {
    let out = ''
    const bwrap = ['--unshare-user', '--uid', '0', '--gid', '0', '--bind', root, '/', '--dev', '/dev', ...(withFilter ? ['--seccomp', '3'] : []), '--', '/bin/sh', '-c', script]
    const drop = isRoot() ? ['--reuid', String(UNPRIVILEGED_UID), '--regid', String(UNPRIVILEGED_UID), '--clear-groups'] : []
    const r = await runProcess({
      file: findTool('setpriv') as string,
      args: [...drop, findTool('bwrap') as string, ...bwrap],
      env: { PATH: '/usr/bin:/bin' },
      ...(withFilter ? { inputFds: [rootEmulationFilter()] } : {}),
      timeoutMs: 10_000,
      onOutput: (_s, c) => { out += Buffer.from(c).toString() }
    })
    return { code: r.exitCode, out }
  }

  it('busybox chown 1:1 succeeds with the filter, and fails without it', async () => {
    const chown = 'touch /tmp/f && chown 1:1 /tmp/f && echo chowned'
    const without = await as65534(false, chown)
    expect(without.code).not.toBe(0)
    expect(without.out).toMatch(/chown: \/tmp\/f: (Invalid argument|Operation not permitted)/)
    const with_ = await as65534(true, chown)
    expect(with_).toEqual({ code: 0, out: 'chowned\n' })
  })

  it('skips fdatasync: on /dev/null (EINVAL when the kernel runs it) it returns 0 under the filter', async () => {
    const sync = 'sync -d /dev/null && echo synced'
    const without = await as65534(false, sync)
    expect(without.code).not.toBe(0)
    expect(without.out).toMatch(/Invalid argument/)
    expect(await as65534(true, sync)).toEqual({ code: 0, out: 'synced\n' })
  })
})
