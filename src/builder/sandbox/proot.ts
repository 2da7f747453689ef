/**
 * The `proot` driver: ptrace-based, needs no namespaces at all, so it works
 * on nodes where user namespaces are disabled. It cannot mount overlayfs, so
 * it takes only plain dir roots (the builder then diffs by scanning), and it
 * cannot cut the network off: `features.networkIsolation` is false and the
 * builder says so when a step runs without network.
 *
 * Nor can it isolate processes (`features.processIsolation` is false): there
 * is no pid namespace, so a step can signal kiln, read its memory
 * (process_vm_readv) and take its file descriptors (pidfd_getfd), all as the
 * same user; and a step that kills proot runs on unconfined. The driver does
 * what proot allows, for recipes the operator trusts (docs/security.md):
 * - the host's /proc is not bound (no host process is listed, nor its
 *   environ, cmdline or memory reachable through /proc); the cost is that
 *   /proc, /dev/fd and /dev/stdin do not exist in the step;
 * - /dev holds only the usual devices (SANDBOX_DEVICES) and a private
 *   /dev/shm, not the host's /dev (whose /dev/shm is shared with every
 *   process of the node);
 * - proot and its supervisor run with HOST_ENV; the step's environment is
 *   set by busybox `env -i` in the root (./step-env.ts).
 *
 * The step runs under a tiny wrapper (the host's static busybox sh, bound
 * at /.kiln-proot, never part of the image) that records the step's exit
 * status in a host dir and tells the supervisor (./proot-supervisor.ts),
 * which kills everything the step left running, daemons included, before
 * proot ends. The supervisor gets SIGTERM when kiln dies, and does the same.
 */
import { lstat, mkdir, mkdtemp, readFile, rm, rmdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DirTree, resolveInRoot } from '../../oci/index.ts'
import { SANDBOX_DEVICES } from '../constants.ts'
import { SandboxError } from '../errors.ts'
import { workdirInRoot } from './scratch.ts'
import { HOST_ENV } from './host-tools.ts'
import { requireTool } from './ns-script.ts'
import { runProcess } from './process.ts'
import { SUPERVISOR_ENV, supervisorArgs } from './proot-supervisor.ts'
import { envArgv } from './step-env.ts'
import { sweepProotTemp } from '../stale-scratch.ts'
import { scratchPrefix } from '../../util/owner.ts'
import { placeMounts } from './mount-points.ts'
import type { RunSpec, RunResult, Sandbox, SandboxMount } from './types.ts'

/** Guest path of the wrapper's bind mounts; proot creates placeholders for them in the root, removed after the run. */
const GUEST_DIR = '.kiln-proot'
const GUEST_BUSYBOX = `/${GUEST_DIR}/busybox`
const WRAPPER = `"$@"; echo $? > /${GUEST_DIR}/status/code; kill -USR1 "$${SUPERVISOR_ENV}"`

/** Guest paths proot binds over; children before parents. */
function mountPoints (network: boolean): string[] {
  return [
    ...(network ? ['etc/resolv.conf', 'etc/hosts', 'etc'] : []),
    ...SANDBOX_DEVICES.map(d => `dev/${d}`), 'dev/shm', 'dev',
    'sys', GUEST_DIR
  ]
}

/** A guest path's host path inside the root, resolved as the guest sees it (a link a step made never leads out). */
async function inRoot (root: string, guest: string): Promise<{ host: string, exists: boolean }> {
  const tree = new DirTree(root)
  const r = await resolveInRoot(tree, guest, { follow: false })
  return { host: tree.path(r.comps), exists: r.entry !== undefined }
}

async function missingMountPoints (root: string, network: boolean): Promise<string[]> {
  const out: string[] = []
  for (const p of mountPoints(network)) if (!(await inRoot(root, p)).exists) out.push(p)
  return out
}

/**
 * proot makes placeholders in the root for bind targets that do not exist
 * and removes them when it exits normally; the supervisor's kill skips that.
 * Removed here: our own dir whole, the others only while still empty.
 */
async function removePlaceholders (root: string, absent: readonly string[]): Promise<void> {
  for (const p of absent) {
    const full = (await inRoot(root, p)).host
    if (p === GUEST_DIR) { await rm(full, { recursive: true, force: true }); continue }
    const st = await lstat(full).catch(() => undefined)
    if (st === undefined) continue
    if (st.isDirectory()) await rmdir(full).catch(() => {})
    else if (st.isFile() && st.size === 0) await rm(full, { force: true })
  }
}

/**
 * The step's extra mounts as proot binds: proot has no read-only bind
 * (`features.readOnlyMounts` is false: the builder hands a copy) and no
 * tmpfs (a fresh dir in the scratch dir stands in, without a size limit).
 */
async function extraBinds (scratch: string, mounts: readonly SandboxMount[]): Promise<Array<[string, string]>> {
  const pairs: Array<[string, string]> = []
  for (const [i, m] of mounts.entries()) {
    if (m.kind === 'bind' && m.readOnly) throw new SandboxError('the proot driver cannot make a read-only bind mount')
    const host = m.kind === 'bind' ? m.source : join(scratch, `tmpfs-${i}`)
    if (m.kind === 'tmpfs') await mkdir(host, { mode: 0o755 })
    if (host.includes(':') || m.target.includes(':')) throw new SandboxError(`proot cannot bind a path holding ':' (${host} on ${m.target})`)
    pairs.push([host, m.target])
  }
  return pairs
}

/** proot's bind options: the usual devices, a private /dev/shm, /sys, the host's resolver when networked, and the wrapper's dirs. */
function binds (scratch: string, network: boolean, extra: ReadonlyArray<[string, string]>): string[] {
  const pairs: Array<[string, string]> = [
    ...SANDBOX_DEVICES.map((d): [string, string] => [`/dev/${d}`, `/dev/${d}`]),
    [join(scratch, 'shm'), '/dev/shm'],
    ['/sys', '/sys'],
    ...(network ? [['/etc/resolv.conf', '/etc/resolv.conf'], ['/etc/hosts', '/etc/hosts']] as Array<[string, string]> : []),
    [requireTool('busybox'), GUEST_BUSYBOX],
    [join(scratch, 'status'), `/${GUEST_DIR}/status`],
    ...extra
  ]
  return pairs.flatMap(([host, guest]) => ['-b', `${host}:${guest}`])
}

/** proot's fake ids: `-0` (root, its root emulation) or `-i UID:GID` (another user, chown and kin still faked). */
function identity (user: RunSpec['user']): string[] {
  return user === undefined || (user.uid === 0 && user.gid === 0) ? ['-0'] : ['-i', `${user.uid}:${user.gid}`]
}

export function createProotSandbox (): Sandbox {
  return {
    driver: 'proot',
    features: { overlay: false, readOnlyMounts: false, networkIsolation: false, pidIsolation: true, processIsolation: false, rootEmulation: true },
    run: async (spec: RunSpec): Promise<RunResult> => {
      if (spec.root.kind !== 'dir') throw new SandboxError('the proot driver needs a plain root directory, not an overlay')
      const proot = requireTool('proot')
      const supervisor = supervisorArgs()
      const argv = envArgv(GUEST_BUSYBOX, spec.env, spec.argv)
      const root = spec.root.path
      const cwd = await workdirInRoot(spec.root, spec.cwd ?? '/')
      const network = spec.network === true
      const absent = await missingMountPoints(root, network)
      const scratch = await mkdtemp(join(tmpdir(), scratchPrefix('kiln-proot-')))
      const placed = await placeMounts(spec.root, spec.mounts ?? []).catch(async (err: unknown) => { await rm(scratch, { recursive: true, force: true }); throw err })
      try {
        const extra = await extraBinds(scratch, placed.mounts)
        await mkdir(join(scratch, 'status'))
        await mkdir(join(scratch, 'shm'), { mode: 0o1777 })
        const r = await runProcess({
          file: supervisor[0] as string,
          args: [...supervisor.slice(1), proot, ...identity(spec.user), '-v', '-1', '-r', root, '-w', cwd, ...binds(scratch, network, extra), GUEST_BUSYBOX, 'sh', '-c', WRAPPER, 'kiln-step', ...argv],
          env: { ...HOST_ENV },
          parentDeathSignal: 'SIGTERM',
          stopSignal: 'SIGTERM',
          timeoutMs: spec.timeoutMs,
          signal: spec.signal,
          onOutput: spec.onOutput,
          stdin: spec.stdin,
          output: spec.output
        })
        if (r.timedOut) return r
        const code = await readFile(join(scratch, 'status', 'code'), 'utf8').then(t => Number.parseInt(t.trim(), 10), () => undefined)
        // No status file: the wrapper itself was killed (OOM, or by the step): report what proot's end says.
        return code === undefined || Number.isNaN(code) ? r : { ...r, exitCode: code, signal: null }
      } finally {
        await rm(scratch, { recursive: true, force: true })
        await placed.cleanup()
        await removePlaceholders(root, absent)
        await sweepProotTemp()
      }
    }
  }
}
