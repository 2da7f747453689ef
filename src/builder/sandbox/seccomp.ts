/**
 * Root emulation for build steps: a classic-BPF seccomp program that makes
 * the calls a package manager uses to give files and processes away return
 * 0 without doing anything, as Charliecloud's `ch-image --seccomp` does.
 *
 * Terms:
 * - faked call: a system call the filter answers with success (errno 0,
 *   `SECCOMP_RET_ERRNO | 0`) before the kernel runs it. In a single-uid user
 *   namespace (bwrap's `--uid 0`, no /etc/subuid) every `chown` to another
 *   id and every `setuid` to another user fails with EPERM or EINVAL; apt,
 *   dpkg, useradd, passwd tools, pip and npm stop on those errors. Faked,
 *   they go on, and the file simply stays owned by the step's root.
 * - faked calls here: chown, fchown, lchown, fchownat; setuid, setgid,
 *   setreuid, setregid, setresuid, setresgid, setgroups, setfsuid, setfsgid;
 *   mknod and mknodat only for character and block devices (a fifo or a
 *   regular file is still made for real: a device a step "makes" never
 *   exists, kiln carries no devices into layers anyway).
 * - skipped sync: fsync, fdatasync, sync, syncfs and sync_file_range also
 *   return 0 at once (SKIPPED_SYNC_SYSCALLS: durability of scratch files
 *   kiln makes durable itself when it writes the layer). They are the one
 *   kind of call the filter answers that the namespace would have allowed;
 *   skipping them gives nothing either, it only saves the wait.
 *
 * The program checks the architecture first: x86_64 (and its x32 ABI,
 * whose numbers are the same with bit 30 set) and aarch64 use their own
 * numbers; any other architecture (a 32-bit i386 or arm program on a 64-bit
 * kernel, a foreign binary under qemu-user) passes through unchanged, so
 * its calls fail as they would without emulation, never wrongly faked.
 *
 * What is faked is only what the user namespace refuses anyway: the filter
 * grants nothing, it only turns a refusal into a silent success. Processes
 * still run as the step's root, so a program that checks its ids after
 * `setuid` (rather than the call's result) sees it was not switched.
 *
 * The program is the bytes of a `struct sock_filter` array in host byte
 * order, what `bwrap --seccomp FD` reads from FD (bwrap also sets
 * no_new_privs, which an unprivileged seccomp filter needs).
 */
import { endianness } from 'node:os'

/** `seccomp_data.arch` values (linux/audit.h). */
export const AUDIT_ARCH = { x86_64: 0xC000003E, aarch64: 0xC00000B7 } as const

/** Syscall numbers the filter fakes without looking at arguments, per architecture. */
export const FAKED_SYSCALLS: Readonly<Record<keyof typeof AUDIT_ARCH, Readonly<Record<string, number>>>> = {
  // arch/x86/entry/syscalls/syscall_64.tbl
  x86_64: {
    chown: 92, fchown: 93, lchown: 94, fchownat: 260,
    setuid: 105, setgid: 106, setreuid: 113, setregid: 114, setgroups: 116,
    setresuid: 117, setresgid: 119, setfsuid: 122, setfsgid: 123
  },
  // include/uapi/asm-generic/unistd.h (aarch64 has no chown/lchown/mknod: only the *at forms)
  aarch64: {
    fchownat: 54, fchown: 55,
    setregid: 143, setgid: 144, setreuid: 145, setuid: 146, setresuid: 147,
    setresgid: 149, setfsuid: 151, setfsgid: 152, setgroups: 159
  }
}

/**
 * Calls that only make data durable, skipped (answered with success, no
 * effect) in every step: a step's files are scratch until kiln writes its
 * layer, and kiln makes the layer durable itself, so dpkg's fsync after
 * each unpacked file buys nothing but waiting on the disk (a host that
 * crashes mid-step loses the step either way; kiln runs it again). Page
 * cache is shared, so no other process of the step sees a difference.
 * msync is not skipped: it can report unmapped ranges.
 */
export const SKIPPED_SYNC_SYSCALLS: Readonly<Record<keyof typeof AUDIT_ARCH, Readonly<Record<string, number>>>> = {
  x86_64: { fsync: 74, fdatasync: 75, sync: 162, sync_file_range: 277, syncfs: 306 },
  aarch64: { sync: 81, fsync: 82, fdatasync: 83, sync_file_range: 84, syncfs: 267 }
}

/** mknod-family calls faked for devices only, with the index of their mode argument. */
export const FAKED_MKNOD: Readonly<Record<keyof typeof AUDIT_ARCH, ReadonlyArray<{ name: string, nr: number, modeArg: number }>>> = {
  x86_64: [{ name: 'mknod', nr: 133, modeArg: 1 }, { name: 'mknodat', nr: 259, modeArg: 2 }],
  aarch64: [{ name: 'mknodat', nr: 33, modeArg: 2 }]
}

/** x32 system calls are the x86_64 numbers with this bit set. */
const X32_SYSCALL_BIT = 0x40000000

// linux/filter.h and linux/seccomp.h
const BPF_LD_W_ABS = 0x20
const BPF_ALU_AND_K = 0x54
const BPF_JEQ_K = 0x15
const BPF_RET_K = 0x06
const SECCOMP_RET_ALLOW = 0x7fff0000
const SECCOMP_RET_ERRNO = 0x00050000
/** Offsets in `struct seccomp_data`: nr, arch, then u64 args from 16 (the low half first on little-endian). */
const DATA_NR = 0
const DATA_ARCH = 4
const dataArg = (i: number): number => 16 + 8 * i
const S_IFMT = 0o170000
const S_IFCHR = 0o020000
const S_IFBLK = 0o060000

/** One instruction; jump targets are labels, resolved by `assemble`. */
interface Insn { code: number, k: number, jt?: string, jf?: string, label?: string }

const ld = (offset: number): Insn => ({ code: BPF_LD_W_ABS, k: offset })
const jeq = (k: number, jt: string, jf?: string): Insn => ({ code: BPF_JEQ_K, k, jt, ...(jf !== undefined ? { jf } : {}) })
const ret = (k: number, label?: string): Insn => ({ code: BPF_RET_K, k, ...(label !== undefined ? { label } : {}) })

/** Jumps are relative and at most 255 instructions forward: the program stays far below that. */
function assemble (insns: Insn[]): Array<{ code: number, jt: number, jf: number, k: number }> {
  const at = new Map<string, number>()
  insns.forEach((x, i) => { if (x.label !== undefined) at.set(x.label, i) })
  const offset = (from: number, label: string | undefined): number => {
    if (label === undefined) return 0
    const to = at.get(label)
    if (to === undefined || to <= from || to - from - 1 > 255) throw new Error(`seccomp program: bad jump to ${label}`)
    return to - from - 1
  }
  return insns.map((x, i) => ({ code: x.code, jt: offset(i, x.jt), jf: offset(i, x.jf), k: x.k >>> 0 }))
}

function archBlock (arch: keyof typeof AUDIT_ARCH): Insn[] {
  const out: Insn[] = [{ ...ld(DATA_NR), label: arch }]
  if (arch === 'x86_64') out.push({ code: BPF_ALU_AND_K, k: ~X32_SYSCALL_BIT >>> 0 })
  for (const nr of [...Object.values(FAKED_SYSCALLS[arch]), ...Object.values(SKIPPED_SYNC_SYSCALLS[arch])]) out.push(jeq(nr, 'fake'))
  for (const m of FAKED_MKNOD[arch]) out.push(jeq(m.nr, `${arch}-${m.name}`))
  out.push(ret(SECCOMP_RET_ALLOW))
  for (const m of FAKED_MKNOD[arch]) {
    out.push({ ...ld(dataArg(m.modeArg)), label: `${arch}-${m.name}` })
    out.push({ code: BPF_ALU_AND_K, k: S_IFMT })
    out.push(jeq(S_IFCHR, 'fake'), jeq(S_IFBLK, 'fake'), ret(SECCOMP_RET_ALLOW))
  }
  return out
}

/** The filter's instructions, for tests and for `rootEmulationFilter`. */
export function rootEmulationProgram (): Array<{ code: number, jt: number, jf: number, k: number }> {
  const arches = Object.keys(AUDIT_ARCH) as Array<keyof typeof AUDIT_ARCH>
  return assemble([
    ld(DATA_ARCH),
    ...arches.map(a => jeq(AUDIT_ARCH[a], a)),
    ret(SECCOMP_RET_ALLOW),
    ...arches.flatMap(archBlock),
    ret(SECCOMP_RET_ERRNO | 0, 'fake')
  ])
}

let encoded: Uint8Array | undefined

/** The program as `struct sock_filter[]` bytes in host byte order (what `bwrap --seccomp FD` reads). */
export function rootEmulationFilter (): Uint8Array {
  if (encoded !== undefined) return encoded
  const program = rootEmulationProgram()
  const buf = Buffer.alloc(8 * program.length)
  const le = endianness() === 'LE'
  program.forEach((x, i) => {
    if (le) { buf.writeUInt16LE(x.code, 8 * i); buf.writeUInt32LE(x.k, 8 * i + 4) } else { buf.writeUInt16BE(x.code, 8 * i); buf.writeUInt32BE(x.k, 8 * i + 4) }
    buf.writeUInt8(x.jt, 8 * i + 2)
    buf.writeUInt8(x.jf, 8 * i + 3)
  })
  encoded = buf
  return buf
}
