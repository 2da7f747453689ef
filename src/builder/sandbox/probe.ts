/**
 * Finds out which sandbox drivers work on this node by trying each one for
 * real (a namespace, an overlay mount, a command in a root), once per
 * process: the result is cached. With a cache dir it is also kept on disk
 * (`sandbox-probe.json`) keyed by what decides it: kernel release, user,
 * the user-namespace sysctls, and the identity (path, size, mtime) of the
 * host tools the drivers run. A kernel or package upgrade, or a sysctl
 * change, therefore probes again; `kiln doctor` always probes afresh.
 */
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, symlink, copyFile, readFile, rename, writeFile } from 'node:fs/promises'
import { statSync, readFileSync } from 'node:fs'
import { release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'
import { DRIVER_PREFERENCE, PROBE_TIMEOUT_MS } from '../constants.ts'
import { createBwrapSandbox } from './bwrap.ts'
import { HOST_ENV, hostTool } from './host-tools.ts'
import { runProcess } from './process.ts'
import { createProotSandbox } from './proot.ts'
import { removeTree } from './scratch.ts'
import type { DriverProbe, HostProbe, Sandbox, SandboxDriverName, SandboxFeatures, SandboxRoot } from './types.ts'
import { createUnshareSandbox } from './unshare.ts'
import { scratchPrefix } from '../../util/owner.ts'

interface Check { ok: boolean, detail: string }

async function check (file: string | undefined, args: string[], what: string): Promise<Check> {
  if (file === undefined) return { ok: false, detail: `${what}: program not installed` }
  let out = ''
  try {
    const r = await runProcess({ file, args, env: { ...HOST_ENV }, timeoutMs: PROBE_TIMEOUT_MS, onOutput: (_s, c) => { out += Buffer.from(c).toString() } })
    if (r.exitCode === 0) return { ok: true, detail: what }
    return { ok: false, detail: `${what}: ${r.timedOut ? 'timed out' : `exit ${String(r.exitCode ?? r.signal)}`}${out.trim() === '' ? '' : ` (${out.trim().split('\n').slice(-2).join(' / ')})`}` }
  } catch (err) {
    return { ok: false, detail: `${what}: ${(err as Error).message}` }
  }
}

/** A root with a statically linked shell, to run a real step in each driver. */
async function probeRoot (dir: string): Promise<string | undefined> {
  const busybox = hostTool('busybox')
  if (busybox === undefined) return undefined
  const root = join(dir, 'root')
  await mkdir(join(root, 'bin'), { recursive: true })
  await copyFile(busybox, join(root, 'bin/busybox'))
  await symlink('busybox', join(root, 'bin/sh'))
  return root
}

async function driverWorks (sandbox: Sandbox, root: SandboxRoot | undefined): Promise<Check> {
  if (root === undefined) return { ok: true, detail: 'not exercised (no static busybox to probe with)' }
  try {
    const r = await sandbox.run({ argv: ['/bin/sh', '-c', 'exit 7'], env: {}, root, timeoutMs: PROBE_TIMEOUT_MS })
    return r.exitCode === 7 ? { ok: true, detail: 'runs a step' } : { ok: false, detail: `probe step ended with ${String(r.exitCode ?? r.signal)}` }
  } catch (err) {
    return { ok: false, detail: (err as Error).message }
  }
}

/** Why a driver that needs these host programs cannot work, or undefined when all are installed. */
function missingHelpers (names: string[]): Check | undefined {
  const missing = names.filter(n => hostTool(n) === undefined)
  return missing.length === 0 ? undefined : { ok: false, detail: `needs ${missing.join(' and ')} (a static build: busybox-static), not installed` }
}

async function probeHost (): Promise<HostProbe> {
  const dir = await mkdtemp(join(tmpdir(), scratchPrefix('kiln-probe-')))
  try {
    const unshare = hostTool('unshare')
    const userNamespaces = await check(unshare, ['-Ur', '--', '/bin/true'], 'unshare -Ur')
    for (const d of ['lower', 'upper', 'work', 'merged']) await mkdir(join(dir, d))
    const opts = `lowerdir=${join(dir, 'lower')},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')},userxattr`
    const overlayInUserns = userNamespaces.ok
      ? await check(unshare, ['-Urm', '--', hostTool('mount') ?? 'mount', '-t', 'overlay', 'overlay', '-o', opts, join(dir, 'merged')], 'overlay mount in a user namespace')
      : { ok: false, detail: 'needs user namespaces' }
    const root = await probeRoot(dir)
    const overlayRoot = (name: string): SandboxRoot | undefined => root === undefined ? undefined : { kind: 'overlay', lowers: [root], upper: join(dir, `${name}-upper`), work: join(dir, `${name}-work`) }
    const dirRoot: SandboxRoot | undefined = root === undefined ? undefined : { kind: 'dir', path: root }
    for (const n of ['bwrap', 'unshare']) { await mkdir(join(dir, `${n}-upper`)); await mkdir(join(dir, `${n}-work`)) }

    const drivers: DriverProbe[] = []
    const ns: Omit<SandboxFeatures, 'rootEmulation'> = { overlay: overlayInUserns.ok, readOnlyMounts: true, networkIsolation: true, pidIsolation: true, processIsolation: true }
    const bwrapFeatures: SandboxFeatures = { ...ns, rootEmulation: true }
    const unshareFeatures: SandboxFeatures = { ...ns, rootEmulation: false }
    // unshare and proot set the step's environment with the host's static busybox (./step-env.ts).
    const helpers = missingHelpers(['busybox'])
    // Without setpriv no driver gets a parent-death signal (./process.ts): a killed kiln leaves its step running.
    const orphans = hostTool('setpriv') === undefined ? '; no setpriv (util-linux 2.31+): a step outlives a killed kiln' : ''

    const bwrapBin = await check(hostTool('bwrap'), ['--unshare-user', '--uid', '0', '--gid', '0', '--unshare-pid', '--unshare-net', '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', '--', '/bin/true'], 'bwrap with user+pid+net namespaces')
    const bwrap = bwrapBin.ok ? await driverWorks(createBwrapSandbox(bwrapFeatures), ns.overlay ? overlayRoot('bwrap') : dirRoot) : bwrapBin
    drivers.push({ driver: 'bwrap', ok: bwrap.ok, features: bwrapFeatures, detail: bwrap.ok ? `${bwrap.detail}${ns.overlay ? '; overlay mounted in an outer unshare (bwrap 0.8 has no --overlay)' : '; no overlay: scan-based diff'}` : bwrap.detail })

    const un = !userNamespaces.ok ? { ok: false, detail: `needs user namespaces (${userNamespaces.detail})` }
      : helpers !== undefined ? helpers
        : await driverWorks(createUnshareSandbox(unshareFeatures), ns.overlay ? overlayRoot('unshare') : dirRoot)
    drivers.push({ driver: 'unshare', ok: un.ok, features: unshareFeatures, detail: un.ok ? `${un.detail}${ns.overlay ? '; overlay upper dir diff' : '; no overlay: scan-based diff'}; no root emulation (chown/setuid to other ids fail: use bwrap)${orphans}` : un.detail })

    const prootBin = await check(hostTool('proot'), ['-0', '-r', '/', '/bin/true'], 'proot -0')
    const pr = !prootBin.ok ? prootBin : helpers ?? await driverWorks(createProotSandbox(), dirRoot)
    const prootSandbox = createProotSandbox()
    drivers.push({ driver: 'proot', ok: pr.ok, features: prootSandbox.features, detail: pr.ok ? `${pr.detail}; no process isolation, no network isolation, scan-based diff${orphans}` : pr.detail })

    const selected = DRIVER_PREFERENCE.find(n => drivers.find(d => d.driver === n)?.ok === true)
    return { userNamespaces, overlayInUserns, drivers, selected }
  } finally {
    await removeTree(dir)
  }
}

let cached: Promise<HostProbe> | undefined

const PROBE_FILE = 'sandbox-probe.json'
const PROBE_FORMAT = 4
/** Host programs whose presence or version can change what the probe finds. */
const PROBED_TOOLS = ['unshare', 'mount', 'bwrap', 'proot', 'busybox', 'sh', 'setpriv', 'grep']
/** Sysctls that switch unprivileged user namespaces on and off. */
const USERNS_SYSCTLS = ['/proc/sys/user/max_user_namespaces', '/proc/sys/kernel/unprivileged_userns_clone', '/proc/sys/kernel/apparmor_restrict_unprivileged_userns']

const FeaturesSchema = z.object({ overlay: z.boolean(), readOnlyMounts: z.boolean(), networkIsolation: z.boolean(), pidIsolation: z.boolean(), processIsolation: z.boolean(), rootEmulation: z.boolean() })
const CheckSchema = z.object({ ok: z.boolean(), detail: z.string() })
const DriverName = z.enum(DRIVER_PREFERENCE)
const ProbeFileSchema = z.object({
  key: z.string(),
  probe: z.object({
    userNamespaces: CheckSchema,
    overlayInUserns: CheckSchema,
    drivers: z.array(z.object({ driver: DriverName, ok: z.boolean(), features: FeaturesSchema, detail: z.string() })),
    selected: DriverName.optional()
  })
})

/** What the probe result depends on, hashed. */
function probeKey (): string {
  const parts: unknown[] = [PROBE_FORMAT, release(), process.getuid?.() ?? -1]
  for (const f of USERNS_SYSCTLS) { try { parts.push(f, readFileSync(f, 'utf8').trim()) } catch { parts.push(f, null) } }
  for (const t of PROBED_TOOLS) {
    const path = hostTool(t)
    try { const st = statSync(path ?? ''); parts.push(t, path, st.size, st.mtimeMs) } catch { parts.push(t, null) }
  }
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex')
}

async function probeWithDiskCache (dir: string): Promise<HostProbe> {
  const key = probeKey()
  const file = join(dir, PROBE_FILE)
  try {
    const parsed = ProbeFileSchema.safeParse(JSON.parse(await readFile(file, 'utf8')))
    if (parsed.success && parsed.data.key === key) return parsed.data.probe as HostProbe
  } catch { /* absent or unreadable: probe */ }
  const probe = await probeHost()
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    const tmp = `${file}.${process.pid}.tmp`
    await writeFile(tmp, JSON.stringify({ key, probe }), { mode: 0o600 })
    await rename(tmp, file)
  } catch { /* a read-only data dir only costs the next process a probe */ }
  return probe
}

/**
 * Probes the node once per process (pass refresh to probe again). With
 * cacheDir, a result another process stored there under the same key is
 * used instead of probing; refresh probes and stores anew.
 */
export async function probeSandboxes (options: { refresh?: boolean, cacheDir?: string } = {}): Promise<HostProbe> {
  if (cached === undefined || options.refresh === true) {
    const dir = options.cacheDir
    cached = dir === undefined || options.refresh === true ? probeHost() : probeWithDiskCache(dir)
    if (dir !== undefined && options.refresh === true) {
      const fresh = cached
      cached = fresh.then(async p => {
        await mkdir(dir, { recursive: true, mode: 0o700 }).then(async () => { await writeFile(join(dir, PROBE_FILE), JSON.stringify({ key: probeKey(), probe: p }), { mode: 0o600 }) }).catch(() => {})
        return p
      })
    }
  }
  return await cached
}

/** A sandbox for a probed driver with the features the probe found. */
export function sandboxFor (name: SandboxDriverName, features: SandboxFeatures): Sandbox {
  switch (name) {
    case 'bwrap': return createBwrapSandbox(features)
    case 'unshare': return createUnshareSandbox(features)
    case 'proot': return createProotSandbox()
  }
}
