/**
 * Runs kiln as an unprivileged user (uid/gid 65534), the way it runs on a
 * cluster node. CI's clone may sit under a directory that user cannot enter,
 * so the user gets its own readable copy of what kiln needs: src/, agent/,
 * protocols/, package.json and node_modules (hard links where possible,
 * else a copy) in a fresh 0755 dir under /tmp, plus a HOME and data dir it
 * owns. `cleanup()` removes all of it.
 *
 * When the tests do not run as root there is nothing to drop: commands run as
 * the current (already unprivileged) user.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

export const UNPRIVILEGED_UID = 65534

const REPO = resolve(import.meta.dirname, '../..')
const PARTS = ['src', 'agent', 'protocols', 'package.json', 'node_modules']

export interface KilnRun {
  status: number | null
  stdout: string
  stderr: string
}

export interface Unprivileged {
  /** Root of the copy (readable by the user). */
  root: string
  /** HOME of the user; also holds `data` (KILN_DATA_DIR) and a scratch `work` dir it owns. */
  home: string
  dataDir: string
  /** A dir the user owns, for contexts and outputs. */
  work: string
  uid: number
  /** Runs `kiln ARGS` as the user. */
  kiln: (args: string[], options?: { env?: Record<string, string>, timeoutMs?: number, dataDir?: string, input?: string }) => KilnRun
  /** Runs any command as the user; `input` is its stdin (default: none). */
  exec: (file: string, args: string[], options?: { env?: Record<string, string>, timeoutMs?: number, input?: string }) => KilnRun
  /** Makes a path (recursively) owned by the user. */
  give: (path: string) => void
  cleanup: () => void
}

export function isRoot (): boolean {
  return process.getuid?.() === 0
}

export function makeUnprivileged (): Unprivileged {
  const root = mkdtempSync(join(tmpdir(), 'kiln-unpriv-'))
  chmodSync(root, 0o755)
  for (const part of PARTS) {
    const src = join(REPO, part)
    if (!existsSync(src)) continue
    try { execFileSync('cp', ['-al', src, root], { stdio: 'ignore' }) } catch { execFileSync('cp', ['-a', src, root], { stdio: 'ignore' }) }
  }
  const drop = isRoot()
  const uid = drop ? UNPRIVILEGED_UID : process.getuid?.() ?? 0
  const home = join(root, 'home')
  const dataDir = join(home, 'data')
  const work = join(home, 'work')
  // The user's temp dir lives inside the copy, so what a killed process leaves there goes with cleanup.
  const tmp = join(home, 'tmp')
  mkdirSync(dataDir, { recursive: true })
  // As kiln makes it (docs/security.md); a 0755 one would be fixed, with a warning, by every command.
  chmodSync(dataDir, 0o700)
  mkdirSync(work)
  mkdirSync(tmp)
  const give = (path: string): void => { if (drop) execFileSync('chown', ['-R', `${UNPRIVILEGED_UID}:${UNPRIVILEGED_UID}`, path]) }
  give(home)
  const node = join(root, 'node_modules/.bin/node')
  const exec = (file: string, args: string[], options: { env?: Record<string, string>, timeoutMs?: number, input?: string } = {}): KilnRun => {
    const argv = drop ? ['--reuid=65534', '--regid=65534', '--clear-groups', file, ...args] : args
    const r = spawnSync(drop ? 'setpriv' : file, argv, {
      cwd: work,
      env: { PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', HOME: home, TMPDIR: tmp, KILN_DATA_DIR: dataDir, ...options.env },
      encoding: 'utf8',
      ...(options.input !== undefined ? { input: options.input } : {}),
      timeout: options.timeoutMs ?? 120_000,
      killSignal: 'SIGKILL'
    })
    return { status: r.status, stdout: r.stdout, stderr: r.stderr }
  }
  return {
    root, home, dataDir, work, uid, give, exec,
    kiln: (args, options = {}) => exec(node, [join(root, 'src/cli/kiln.mjs'), ...args], { ...options, env: { ...(options.dataDir !== undefined ? { KILN_DATA_DIR: options.dataDir } : {}), ...options.env } }),
    cleanup: () => { rmSync(root, { recursive: true, force: true }) }
  }
}
