/**
 * The `proot` driver: ptrace-based, needs no namespaces at all, so it works
 * on nodes where user namespaces are disabled. It cannot mount overlayfs, so
 * it takes only plain dir roots (the builder then diffs by scanning), and it
 * cannot cut the network off: `features.networkIsolation` is false and the
 * builder says so when a step runs without network.
 *
 * proot waits for every process it traces, so a step that leaves a daemon
 * behind (`sleep 1000 &`) would hold the build. With the host's static
 * busybox at hand the step therefore runs under a tiny wrapper (busybox sh,
 * bound at /.kiln-proot, never part of the image) that records the step's
 * exit status in a host dir and then kills its process group, proot
 * included. Without busybox the step runs directly and leftovers are killed
 * only by the timeout.
 */
import { lstat, mkdtemp, readdir, readFile, rm, rmdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DirTree, resolveInRoot } from '../../oci/index.ts'
import { workdirInRoot } from './scratch.ts'
import { hostTool } from './host-tools.ts'
import { requireTool } from './ns-script.ts'
import { runProcess } from './process.ts'
import { SandboxError } from '../errors.ts'
import type { RunSpec, RunResult, Sandbox } from './types.ts'

/** Guest path of the wrapper's bind mounts; proot creates placeholders for them in the root, removed after the run. */
const GUEST_DIR = '.kiln-proot'
const WRAPPER = `"$@"; echo $? > /${GUEST_DIR}/status/code; kill -KILL 0`

/** Guest paths proot binds over; children before parents. */
function mountPoints (network: boolean): string[] {
  return [...(network ? ['etc/resolv.conf', 'etc/hosts', 'etc'] : []), 'dev', 'proc', 'sys', GUEST_DIR]
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
 * and removes them when it exits normally; the wrapper's kill skips that.
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
 * proot keeps its loader and a glue root in /tmp/proot-PID-* and
 * /tmp/prooted-PID-* (Debian's build ignores PROOT_TMP_DIR) and removes them
 * only when it exits normally; the wrapper's `kill -KILL 0`, a timeout or an
 * abort kills it first. After each step, remove the ones of proot processes
 * that are gone and that belong to this user.
 */
const PROOT_TMP = '/tmp'

async function sweepProotTemp (): Promise<void> {
  const uid = process.getuid?.()
  const names = await readdir(PROOT_TMP).catch(() => [] as string[])
  for (const name of names) {
    const m = /^proot(?:ed)?-(\d+)-[A-Za-z0-9]+$/.exec(name)
    if (m === null || pidAlive(Number(m[1]))) continue
    const path = join(PROOT_TMP, name)
    const st = await lstat(path).catch(() => undefined)
    if (st === undefined || (uid !== undefined && st.uid !== uid)) continue
    await rm(path, { recursive: true, force: true }).catch(() => {})
  }
}

function pidAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export function createProotSandbox (): Sandbox {
  return {
    driver: 'proot',
    features: { overlay: false, networkIsolation: false, pidIsolation: false },
    run: async (spec: RunSpec): Promise<RunResult> => {
      if (spec.root.kind !== 'dir') throw new SandboxError('the proot driver needs a plain root directory, not an overlay')
      const proot = requireTool('proot')
      const root = spec.root.path
      const cwd = await workdirInRoot(spec.root, spec.cwd ?? '/')
      const binds = ['/dev', '/proc', '/sys'].flatMap(p => ['-b', p])
      if (spec.network === true) binds.push('-b', '/etc/resolv.conf', '-b', '/etc/hosts')
      const busybox = hostTool('busybox')
      const absent = await missingMountPoints(root, spec.network === true)
      const statusDir = busybox === undefined ? undefined : await mkdtemp(join(tmpdir(), 'kiln-proot-'))
      const argv = busybox === undefined || statusDir === undefined
        ? spec.argv
        : ['-b', `${busybox}:/${GUEST_DIR}/busybox`, '-b', `${statusDir}:/${GUEST_DIR}/status`, `/${GUEST_DIR}/busybox`, 'sh', '-c', WRAPPER, 'kiln-step', ...spec.argv]
      try {
        const r = await runProcess({
          file: proot,
          args: ['-0', '-r', root, '-w', cwd, ...binds, ...argv],
          // proot itself reads PROOT_* and TMPDIR; the step sees the same env.
          env: spec.env,
          timeoutMs: spec.timeoutMs,
          signal: spec.signal,
          onOutput: spec.onOutput
        })
        if (statusDir === undefined || r.timedOut) return r
        const code = await readFile(join(statusDir, 'code'), 'utf8').then(t => Number.parseInt(t.trim(), 10), () => undefined)
        // No status file: the wrapper itself was killed (abort, OOM): report what proot's end says.
        return code === undefined || Number.isNaN(code) ? r : { ...r, exitCode: code, signal: null }
      } finally {
        if (statusDir !== undefined) await rm(statusDir, { recursive: true, force: true })
        await removePlaceholders(root, absent)
        await sweepProotTemp()
      }
    }
  }
}
