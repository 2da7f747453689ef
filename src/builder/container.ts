/**
 * Running an image (`kiln run`, the demo): the image's entrypoint and
 * command, environment, working dir and user, in the sandbox the builder
 * uses for RUN steps, on a throwaway root.
 *
 * Terms:
 * - the *root* is the image's unpacked base (./base.ts's unpackedBase: one
 *   extraction per manifest and user, kept under the build work dir's
 *   rootfs/ and shared with builds) under a fresh overlay upper dir, or,
 *   for a driver without overlay (proot), a reflinked copy of it. Either
 *   goes when the run ends: nothing the command writes persists, except
 *   through a bind mount (`-v`).
 * - the *user* is `USER[:GROUP]` (names or numbers) resolved in the
 *   image's /etc/passwd and /etc/group, as podman does: a name must be
 *   there; a number need not be (then its group is 0 and HOME is /). The
 *   sandbox maps the node's one user to that uid and gid, so `id -u`
 *   prints it and files the node's user owns show as owned by it; other
 *   ids exist only as root emulation fakes them (docs/cli.md, `kiln run`).
 *
 * While the command runs, a build lock is held on the work dir
 * (./build-locks.ts), so `kiln gc` leaves the unpacked base alone.
 */
import { existsSync } from 'node:fs'
import { constants } from 'node:os'
import { mkdir, mkdtemp, readFile, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { ContentStore } from '../content/index.ts'
import { DirTree, PlatformNotFoundError, formatPlatform, hostPlatform, resolveImage, resolveInRoot } from '../oci/index.ts'
import type { Descriptor, ImageConfig, ResolvedImage } from '../oci/index.ts'
import { isErrorOf } from '../util/error-class.ts'
import { unpackedBase } from './base.ts'
import { holdBuildLock } from './build-locks.ts'
import { DEFAULT_PATH } from './constants.ts'
import { createSandbox, removeTree } from './sandbox/index.ts'
import type { Sandbox, SandboxMount, SandboxRoot } from './sandbox/index.ts'
import { requireTool } from './sandbox/ns-script.ts'
import { runProcess } from './sandbox/process.ts'

/** Something about the image or the options keeps the command from starting; `hint` says what to do. */
export class ContainerSetupError extends Error {
  static override readonly name = 'ContainerSetupError'
  override readonly name = ContainerSetupError.name
  readonly code = 'ERR_CONTAINER_SETUP'
  readonly hint?: string
  constructor (message: string, hint?: string) {
    super(message)
    if (hint !== undefined) this.hint = hint
  }
}

/** A bind mount as `-v HOST:CTR[:ro]` says it. */
export interface VolumeSpec { source: string, target: string, readOnly: boolean }

export interface ContainerOptions {
  store: ContentStore
  /** The image: a manifest, or an index resolved for the host's platform. */
  image: Descriptor
  /** The builder's work dir (`<data dir>/build`): its rootfs/ cache and tmp/ are used. */
  workDir: string
  /** Replaces the image's Cmd (and, with `entrypoint`, is all there is after it). */
  command?: string[]
  /** Replaces the image's Entrypoint; `[]` clears it. The image's Cmd is then dropped too, as podman does. */
  entrypoint?: string[]
  /** `K=V` sets, a bare `K` takes kiln's own value (skipped when unset); applied over the image's Env in order. */
  env?: string[]
  workingDir?: string
  /** `USER[:GROUP]`; default the image's User, else root. */
  user?: string
  volumes?: VolumeSpec[]
  /** The host's network; default none (loopback only), as builds. */
  network?: boolean
  /** The command reads kiln's stdin. */
  interactive?: boolean
  /** Output to onOutput instead of kiln's own stdout and stderr (the demo). */
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Uint8Array) => void
  timeoutMs?: number
  signal?: AbortSignal
  /** Default: createSandbox(). */
  sandbox?: Sandbox
}

export interface ContainerResult {
  argv: string[]
  driver: string
  user: { uid: number, gid: number }
  /** The command's exit code, or 128 + the signal's number when it was killed. */
  exitCode: number
  timedOut: boolean
}

/** The image config's process: what runs, with which environment, where and as whom. */
export interface ContainerProcess {
  argv: string[]
  env: Record<string, string>
  cwd: string
  user: { uid: number, gid: number }
}

/** The image's manifest and config for this node, or a clear error when it is for another platform. */
export async function resolveRunnable (store: ContentStore, image: Descriptor): Promise<ResolvedImage> {
  const host = hostPlatform()
  let resolved: ResolvedImage
  try {
    resolved = await resolveImage(store, image, host)
  } catch (err) {
    if (!isErrorOf(err, PlatformNotFoundError)) throw err
    throw new ContainerSetupError(`the image has no manifest for this node's platform ${formatPlatform(host)}: ${err.message}`, 'pull or build the image for this platform (kiln submit --platform ...)')
  }
  const arch = resolved.config.architecture
  if (arch !== undefined && arch !== host.architecture && !emulatorFor(arch)) {
    throw new ContainerSetupError(
      `the image is for ${resolved.config.os ?? 'linux'}/${arch} and this node is ${formatPlatform(host)}, with no emulator registered for ${arch} in /proc/sys/fs/binfmt_misc`,
      `run it on a ${arch} node, or ask the admins to register qemu-user-static for ${arch} (kiln doctor shows the emulators)`)
  }
  return resolved
}

/** Whether a binfmt_misc entry runs binaries of this OCI architecture (qemu-user). */
export function emulatorFor (arch: string): boolean {
  const names: Record<string, string[]> = { arm64: ['qemu-aarch64'], amd64: ['qemu-x86_64'], arm: ['qemu-arm'], ppc64le: ['qemu-ppc64le'], riscv64: ['qemu-riscv64'], s390x: ['qemu-s390x'], 386: ['qemu-i386'] }
  return (names[arch] ?? []).some(n => existsSync(join('/proc/sys/fs/binfmt_misc', n)))
}

interface PasswdEntry { name: string, uid: number, gid: number, home: string }

async function readInRoot (rootfs: string, path: string): Promise<string> {
  const tree = new DirTree(rootfs)
  const found = await resolveInRoot(tree, path).catch(() => undefined)
  if (found?.entry === undefined || !found.entry.st.isFile()) return ''
  return await readFile(found.entry.host, 'utf8').catch(() => '')
}

function passwd (text: string): PasswdEntry[] {
  const out: PasswdEntry[] = []
  for (const line of text.split('\n')) {
    const f = line.split(':')
    const uid = Number(f[2]); const gid = Number(f[3])
    if (f.length >= 4 && f[0] !== '' && Number.isInteger(uid) && Number.isInteger(gid)) out.push({ name: f[0] as string, uid, gid, home: f[5] ?? '' })
  }
  return out
}

function groups (text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    const f = line.split(':')
    const gid = Number(f[2])
    if (f.length >= 3 && f[0] !== '' && Number.isInteger(gid) && !out.has(f[0] as string)) out.set(f[0] as string, gid)
  }
  return out
}

const numeric = (s: string): number | undefined => /^\d+$/.test(s) && Number(s) <= 0xfffffffe ? Number(s) : undefined

/** `USER[:GROUP]` as uid, gid and home, looked up in the root's /etc/passwd and /etc/group. */
export async function resolveUser (rootfs: string, spec: string): Promise<{ uid: number, gid: number, home: string }> {
  const [user = '', group] = spec.split(':', 2)
  if (user === '' || group === '') throw new ContainerSetupError(`user ${JSON.stringify(spec)}: expected USER[:GROUP], each a name or a number`)
  const entries = passwd(await readInRoot(rootfs, '/etc/passwd'))
  const asNumber = numeric(user)
  const entry = asNumber !== undefined ? entries.find(e => e.uid === asNumber) : entries.find(e => e.name === user)
  if (asNumber === undefined && entry === undefined) {
    throw new ContainerSetupError(`no user ${user} in the image's /etc/passwd`, 'give a numeric uid (-u 1000), or a user the image defines')
  }
  const uid = asNumber ?? (entry as PasswdEntry).uid
  let gid = entry?.gid ?? 0
  if (group !== undefined) {
    const g = numeric(group) ?? groups(await readInRoot(rootfs, '/etc/group')).get(group)
    if (g === undefined) throw new ContainerSetupError(`no group ${group} in the image's /etc/group`, 'give a numeric gid (-u 1000:1000), or a group the image defines')
    gid = g
  }
  return { uid, gid, home: entry?.home !== undefined && entry.home !== '' ? entry.home : '/' }
}

function envMap (list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const e of list) {
    const i = e.indexOf('=')
    if (i > 0) out[e.slice(0, i)] = e.slice(i + 1)
  }
  return out
}

/** The process the image's config and the options describe, with the user resolved in `rootfs`. */
export async function containerProcess (config: ImageConfig, rootfs: string, options: Pick<ContainerOptions, 'command' | 'entrypoint' | 'env' | 'workingDir' | 'user'>): Promise<ContainerProcess> {
  const c = config.config ?? {}
  const entrypoint = options.entrypoint ?? c.Entrypoint ?? []
  const command = options.command !== undefined && options.command.length > 0
    ? options.command
    : options.entrypoint !== undefined ? [] : c.Cmd ?? []
  const argv = [...entrypoint, ...command]
  if (argv.length === 0) throw new ContainerSetupError('the image names no command (no Entrypoint nor Cmd) and none was given', 'give one after the image: kiln run IMAGE /bin/sh -c "..."')
  const userSpec = options.user ?? (c.User !== undefined && c.User !== '' ? c.User : '0')
  const user = await resolveUser(rootfs, userSpec)
  const env: Record<string, string> = { PATH: DEFAULT_PATH, HOME: user.home, ...envMap(c.Env ?? []) }
  for (const e of options.env ?? []) {
    const i = e.indexOf('=')
    if (i === 0 || e === '') throw new ContainerSetupError(`-e ${JSON.stringify(e)}: expected NAME=VALUE or NAME`)
    if (i > 0) env[e.slice(0, i)] = e.slice(i + 1)
    else if (process.env[e] !== undefined) env[e] = process.env[e]
  }
  const cwd = options.workingDir ?? (c.WorkingDir !== undefined && c.WorkingDir !== '' ? c.WorkingDir : '/')
  if (!cwd.startsWith('/')) throw new ContainerSetupError(`working dir ${JSON.stringify(cwd)} is not an absolute path`)
  return { argv, env, cwd, user: { uid: user.uid, gid: user.gid } }
}

/** `-v` as sandbox bind mounts: host paths resolved from kiln's cwd, and existing. */
async function bindMounts (volumes: readonly VolumeSpec[], sandbox: Sandbox): Promise<SandboxMount[]> {
  const out: SandboxMount[] = []
  for (const v of volumes) {
    const source = resolve(v.source)
    if (!(await stat(source).then(() => true, () => false))) throw new ContainerSetupError(`volume source ${source} does not exist`, 'create it first (kiln run makes no host paths)')
    if (!v.target.startsWith('/')) throw new ContainerSetupError(`volume target ${JSON.stringify(v.target)} is not an absolute path`)
    if (v.readOnly && !sandbox.features.readOnlyMounts) {
      throw new ContainerSetupError(`the ${sandbox.driver} sandbox cannot make a read-only bind mount (-v ${v.source}:${v.target}:ro)`, 'drop :ro, or run where bwrap or unshare works (kiln doctor)')
    }
    out.push({ kind: 'bind', source, target: v.target, readOnly: v.readOnly })
  }
  return out
}

/** A copy of a tree with modes, times and links kept, reflinked where the filesystem can. */
async function copyTree (from: string, to: string): Promise<void> {
  let err = ''
  const r = await runProcess({ file: requireTool('cp'), args: ['-a', '--reflink=auto', '--', from, to], env: { PATH: '/usr/bin:/bin' }, onOutput: (_s, c) => { err += Buffer.from(c).toString() } })
  if (r.exitCode !== 0) throw new Error(`cannot copy ${from} to ${to}: ${err.trim()}`)
}

/** Runs the image's process in the sandbox on a throwaway root; resolves when it has exited and the root is gone. */
export async function runContainer (options: ContainerOptions): Promise<ContainerResult> {
  const { store, workDir, signal } = options
  const image = await resolveRunnable(store, options.image)
  const sandbox = options.sandbox ?? await createSandbox()
  const mounts = await bindMounts(options.volumes ?? [], sandbox)
  const tmp = join(workDir, 'tmp')
  await mkdir(tmp, { recursive: true, mode: 0o700 })
  const lock = await holdBuildLock(workDir)
  let scratch: string | undefined
  try {
    const base = await unpackedBase(store, { descriptor: image.descriptor, manifestDigest: image.descriptor.digest, manifest: image.manifest, config: image.config }, join(workDir, 'rootfs'), signal)
    const proc = await containerProcess(image.config, base, options)
    scratch = await mkdtemp(join(tmp, 'run-'))
    let root: SandboxRoot
    if (sandbox.features.overlay) {
      const upper = join(scratch, 'upper'); const work = join(scratch, 'work')
      await mkdir(upper); await mkdir(work)
      root = { kind: 'overlay', lowers: [base], upper, work }
    } else {
      await copyTree(base, join(scratch, 'rootfs'))
      root = { kind: 'dir', path: join(scratch, 'rootfs') }
    }
    const inherit = options.onOutput === undefined
    const r = await sandbox.run({
      argv: proc.argv,
      env: proc.env,
      cwd: proc.cwd,
      root,
      mounts,
      network: options.network === true,
      user: proc.user,
      stdin: options.interactive === true ? 'inherit' : 'null',
      output: inherit ? 'inherit' : 'pipe',
      ...(options.onOutput !== undefined ? { onOutput: options.onOutput } : {}),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      ...(signal !== undefined ? { signal } : {})
    })
    const exitCode = r.exitCode ?? 128 + (r.signal === null ? 9 : constants.signals[r.signal])
    return { argv: proc.argv, driver: sandbox.driver, user: proc.user, exitCode, timedOut: r.timedOut }
  } finally {
    if (scratch !== undefined) await removeTree(scratch)
    await lock.release()
  }
}
