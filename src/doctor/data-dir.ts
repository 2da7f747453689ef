/**
 * The data dir is private to its owner (docs/security.md). Everything kiln
 * creates in it is 0700 (dirs) or 0600 (files; stored blobs 0400) whatever
 * the umask, and the dir itself is 0700, so no other user can even enter
 * it: unpacked image roots under it keep the image's own modes (they become
 * layer content) and are protected by that ancestor, not by their modes.
 *
 * Terms: *too open* is any permission bit for group or others. A *secret
 * file* carries keys, password hashes or the store's records (SECRET_FILES).
 *
 * Older kiln versions made the dir 0755 and sqlite made kiln.db 0644 less
 * the umask: every command that opens a data dir calls secureDataDir, which
 * creates the dir 0700 or takes group and other bits off the dir and the
 * secret files, and says what it changed. `kiln doctor` reports the same
 * findings (inspectDataDir) without changing anything.
 */
import { chmod, mkdir, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { DB_FILE } from '../db/index.ts'
import { IDENTITY_FILE } from '../p2p/constants.ts'
import { POLICY_FILE, ROOT_KEY_FILE, TRUST_DIR } from '../trust/constants.ts'
import { isErrno, PRIVATE_DIR_MODE } from '../util/fs.ts'
import { DataDirError } from './errors.ts'

export { DataDirError }

/** The gateway's users file when `--users` names none (password hashes). */
export const GATEWAY_USERS_FILE = join('gateway', 'users.yaml')

/** Data-dir-relative paths of the secret files; sqlite's -wal and -shm hold recent records too. */
export const SECRET_FILES: readonly string[] = [
  IDENTITY_FILE,
  DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`,
  join(TRUST_DIR, ROOT_KEY_FILE), join(TRUST_DIR, POLICY_FILE),
  GATEWAY_USERS_FILE
]

const OPEN_BITS = 0o077

/** A path found too open, its permission bits, and the bits it should have (group and other bits removed). */
export interface TooOpen {
  path: string
  mode: number
  want: number
  kind: 'data dir' | 'secret file'
}

/** Permission bits of a path (following links), or undefined when it does not exist. */
export type ModeOf = (path: string) => Promise<number | undefined>

export const modeOnDisk: ModeOf = async (path) => {
  try {
    return (await stat(path)).mode & 0o7777
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined
    throw err
  }
}

/** What is too open: the data dir, then each secret file that exists. Nothing for a data dir not created yet. */
export async function inspectDataDir (dir: string, modeOf: ModeOf = modeOnDisk): Promise<TooOpen[]> {
  const rootMode = await modeOf(dir)
  if (rootMode === undefined) return []
  const found: TooOpen[] = []
  if ((rootMode & OPEN_BITS) !== 0) found.push({ path: dir, mode: rootMode, want: rootMode & ~OPEN_BITS, kind: 'data dir' })
  for (const rel of SECRET_FILES) {
    const path = join(dir, rel)
    const mode = await modeOf(path)
    if (mode !== undefined && (mode & OPEN_BITS) !== 0) found.push({ path, mode, want: mode & ~OPEN_BITS, kind: 'secret file' })
  }
  return found
}

export interface SecuredDataDir {
  /** True when this call created the data dir. */
  created: boolean
  /** What was too open and has been fixed, in inspectDataDir's order. */
  fixed: TooOpen[]
}

/**
 * Makes the data dir private: creates it 0700 (missing parents get the
 * umask's modes: they are not kiln's), or fixes what inspectDataDir finds.
 * Safe to call again; throws DataDirError when it cannot.
 */
export async function secureDataDir (dir: string): Promise<SecuredDataDir> {
  let created = false
  try {
    await mkdir(dirname(dir), { recursive: true })
    await mkdir(dir, { mode: PRIVATE_DIR_MODE })
    created = true
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw new DataDirError(dir, `cannot create the data dir ${dir}: ${(err as Error).message}`, { cause: err })
  }
  if ((await stat(dir).catch(() => undefined))?.isDirectory() !== true) throw new DataDirError(dir, `the data dir ${dir} is not a directory`)
  const fixed = await inspectDataDir(dir)
  for (const f of fixed) {
    try {
      await chmod(f.path, f.want)
    } catch (err) {
      throw new DataDirError(dir, `cannot make ${f.path} private (chmod ${formatMode(f.want)}): ${(err as Error).message}`, { cause: err })
    }
  }
  return { created, fixed }
}

export function formatMode (mode: number): string {
  return mode.toString(8).padStart(4, '0')
}

/** One line for people about a fix or a finding. */
export function describeTooOpen (t: TooOpen): string {
  return `${t.kind} ${t.path} is ${formatMode(t.mode)}: other users of this node can ${t.kind === 'data dir' ? 'enter it' : 'read it'}`
}
