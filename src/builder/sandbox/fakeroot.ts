/**
 * The ownership ledger of a RUN step in the bwrap driver: Debian's fakeroot
 * (faked and libfakeroot, the sysv flavour) runs inside the step's sandbox
 * and records every owner and mode the step's processes set, so kiln can
 * write them into the step's layer (src/builder/owner-ledger.ts;
 * docs/building.md, "Ownership").
 *
 * Terms:
 * - host pieces: the host's faked-sysv, libfakeroot-sysv.so, the host's
 *   dynamic loader and libc (faked is a host program; it is started through
 *   the host's loader with `--library-path`, so it never uses the image's
 *   libc) and a statically linked busybox (the wrapper's shell: it needs no
 *   loader and nothing of the image). They are bound read-only under
 *   HOST_DIR, in the step's private /dev: never in a layer.
 * - ledger dir: a host dir bound read-write at LEDGER_DIR. kiln writes
 *   `in`, the owners the step starts from (faked's save-file format, with
 *   `dev=DEV` for the root's device, which only the sandbox knows); the
 *   wrapper leaves `out` (faked's state when the step ended) and `rootdev`
 *   (the device of `/` as the step saw it, hex, as faked writes it).
 * - libfakeroot is preloaded (LD_PRELOAD) into the step's own programs,
 *   loaded by the image's loader against the image's libc: the builder
 *   only asks for a ledger when the stage's glibc is new enough
 *   (src/builder/owner-ledger.ts, `glibcRefusal`).
 *
 * faked talks to libfakeroot over SysV message queues, which the step's
 * private IPC namespace (`--unshare-ipc`) keeps to the step. chown and
 * chmod are sent without an answer, so before faked is told to stop (and
 * save) the wrapper makes one call faked answers (a `test -e /` of the
 * image's shell; without one, it waits for the queue to be empty), as
 * fakeroot's own script does with `ls -l /`. The seccomp
 * filter stays: libfakeroot still calls the real chown after recording it,
 * and the filter makes that call succeed without effect.
 */
import { existsSync, readFileSync } from 'node:fs'
import { arch } from 'node:os'

/** Where the host pieces are in the step (its private /dev). */
export const HOST_DIR = '/dev/.kiln/host'
/** Where the ledger dir is in the step. */
export const LEDGER_DIR = '/dev/.kiln/ledger'

interface HostPieces { faked: string, lib: string, loader: string, libc: string, busybox: string }

const MULTIARCH: Partial<Record<string, { triplet: string, loader: string }>> = {
  x64: { triplet: 'x86_64-linux-gnu', loader: '/lib64/ld-linux-x86-64.so.2' },
  arm64: { triplet: 'aarch64-linux-gnu', loader: '/lib/ld-linux-aarch64.so.1' }
}

/** ELF program header type of the interpreter: a static program has none. */
const PT_INTERP = 3

/** Whether `path` is a 64-bit little-endian ELF program without an interpreter (statically linked). */
export function isStaticElf (path: string): boolean {
  let b: Buffer
  try { b = readFileSync(path) } catch { return false }
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b[5] !== 1) return false
  const phoff = Number(b.readBigUInt64LE(32)); const phentsize = b.readUInt16LE(54); const phnum = b.readUInt16LE(56)
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize
    if (at + 4 > b.length) return false
    if (b.readUInt32LE(at) === PT_INTERP) return false
  }
  return true
}

let found: { pieces?: HostPieces, refusal?: string } | undefined

/** The host pieces, or why the ledger cannot run on this node (memoized: the host's packages do not change under a running kiln). */
export function hostFakeroot (): { pieces?: HostPieces, refusal?: string } {
  if (found !== undefined) return found
  const m = MULTIARCH[arch()]
  if (m === undefined) return (found = { refusal: `no ownership ledger on ${arch()} (kiln knows the fakeroot paths of x86_64 and aarch64 only)` })
  const pieces: HostPieces = {
    faked: '/usr/bin/faked-sysv',
    lib: `/usr/lib/${m.triplet}/libfakeroot/libfakeroot-sysv.so`,
    loader: m.loader,
    libc: `/lib/${m.triplet}/libc.so.6`,
    busybox: '/bin/busybox'
  }
  const missing = Object.values(pieces).filter(p => !existsSync(p))
  if (missing.length > 0) return (found = { refusal: `${missing.join(', ')} missing: install Debian's fakeroot and busybox-static (kiln doctor checks them)` })
  if (!isStaticElf(pieces.busybox)) return (found = { refusal: `${pieces.busybox} is not statically linked: install Debian's busybox-static` })
  return (found = { pieces })
}

/** The highest GLIBC_2.N symbol version the host's libfakeroot asks for (N), or undefined without fakeroot. */
export function fakerootGlibcMinor (): number | undefined {
  const lib = hostFakeroot().pieces?.lib
  if (lib === undefined) return undefined
  libGlibc ??= { minor: maxGlibcMinor(readFileSync(lib)) }
  return libGlibc.minor
}

let libGlibc: { minor: number | undefined } | undefined

/** The highest `GLIBC_2.N` named in an ELF file's bytes (its version needs or definitions), or undefined. */
export function maxGlibcMinor (bytes: Uint8Array): number | undefined {
  let max: number | undefined
  for (const m of Buffer.from(bytes).toString('latin1').matchAll(/GLIBC_2\.(\d+)/g)) {
    const n = Number(m[1])
    if (max === undefined || n > max) max = n
  }
  return max
}

/**
 * The wrapper, run as `busybox sh -c WRAPPER kiln-ledger ARGV...`: starts
 * faked on the loaded state, runs ARGV with libfakeroot preloaded, stops
 * faked (which saves its state) and exits with ARGV's status. ARGV[0]
 * without a `/` is looked up in PATH here, as bwrap would: busybox's shell
 * would otherwise prefer its own applet of that name.
 */
const WRAPPER = [
  `H=${HOST_DIR}; L=${LEDGER_DIR}; B=$H/busybox`,
  'D=$($B printf %x "$($B stat -c %d /)") && $B sed "s/^dev=DEV,/dev=$D,/" $L/in > $L/load || exit 125',
  'KP=$($H/ld.so --library-path $H/lib $H/faked --load --save-file $L/out < $L/load)',
  'case $KP in *:*) ;; *) echo "kiln: the ownership ledger (fakeroot\'s faked) did not start" >&2; exit 125;; esac',
  'echo $D > $L/rootdev',
  'c=$1; shift',
  'case $c in */*) ;; *) IFS=:; for d in $PATH; do if [ -f "$d/$c" ] && [ -x "$d/$c" ]; then c=$d/$c; break; fi; done; unset IFS;; esac',
  'FAKEROOTKEY=${KP%%:*} LD_PRELOAD="$H/libfakeroot.so${LD_PRELOAD:+:$LD_PRELOAD}" "$c" "$@"',
  'rc=$?; P=${KP##*:}',
  // libfakeroot sends chown and chmod to faked without waiting for an answer, and faked saves on SIGTERM
  // what it has handled so far. A stat is answered, after the messages before it: the image's shell asks one.
  'if [ -x /bin/sh ]; then FAKEROOTKEY=${KP%%:*} LD_PRELOAD=$H/libfakeroot.so /bin/sh -c "test -e /" >/dev/null 2>&1',
  'else n=0; while [ $n -lt 500 ] && $B awk \'NR > 1 && $5 > 0 { f = 1 } END { exit !f }\' /proc/sysvipc/msg 2>/dev/null; do $B usleep 10000; n=$((n + 1)); done; $B usleep 50000; fi',
  '$B kill -TERM $P 2>/dev/null; while $B kill -0 $P 2>/dev/null; do $B usleep 10000; done',
  'exit $rc'
].join('\n')

/** bwrap options binding the host pieces and `ledgerDir`, and the argv that runs `argv` under the ledger. */
export function bwrapLedger (ledgerDir: string, argv: readonly string[]): { args: string[], argv: string[] } {
  const { pieces, refusal } = hostFakeroot()
  if (pieces === undefined) throw new Error(refusal)
  return {
    args: [
      '--ro-bind', pieces.busybox, `${HOST_DIR}/busybox`,
      '--ro-bind', pieces.faked, `${HOST_DIR}/faked`,
      '--ro-bind', pieces.lib, `${HOST_DIR}/libfakeroot.so`,
      '--ro-bind', pieces.loader, `${HOST_DIR}/ld.so`,
      '--ro-bind', pieces.libc, `${HOST_DIR}/lib/libc.so.6`,
      '--bind', ledgerDir, LEDGER_DIR
    ],
    argv: [`${HOST_DIR}/busybox`, 'sh', '-c', WRAPPER, 'kiln-ledger', ...argv]
  }
}
