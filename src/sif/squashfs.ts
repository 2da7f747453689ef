/**
 * Debian's squashfs-tools, run as the calling user (no root needed):
 * mksquashfs to make a SIF's root partition from a rootfs dir, unsquashfs to
 * read one back. The flags that make mksquashfs deterministic on 4.5:
 * `-reproducible` (its default, said anyway), `-mkfs-time` and `-all-time`
 * from SOURCE_DATE_EPOCH, `-all-root` (a rootless unpack leaves files owned
 * by the builder's uid; Apptainer images are root-owned), `-no-xattrs`, and
 * `-noappend` so a leftover file is never extended. mksquashfs 4.5 also
 * reads SOURCE_DATE_EPOCH and refuses it beside `-mkfs-time`: the tools run
 * without it, the epoch is given as flags.
 */
import { spawn } from 'node:child_process'
import { SquashfsToolError } from './errors.ts'

const STDERR_TAIL = 4096

export interface ToolResult { code: number, stderr: string }

/** Runs a tool; resolves with its exit code and the tail of its stderr. Throws SquashfsToolError when it cannot start or is killed. */
async function run (cmd: string, args: readonly string[], signal?: AbortSignal): Promise<ToolResult> {
  return await new Promise((resolve, reject) => {
    const { SOURCE_DATE_EPOCH: _epoch, ...env } = process.env
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'], ...(signal === undefined ? {} : { signal }) })
    let stderr = ''
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (s: string) => { stderr = (stderr + s).slice(-STDERR_TAIL) })
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (signal?.aborted === true) { reject(signal.reason as Error); return }
      reject(new SquashfsToolError(err.code === 'ENOENT' ? `${cmd} is not installed (Debian: apt-get install squashfs-tools)` : `${cmd}: ${err.message}`))
    })
    child.on('close', (code, sig) => {
      if (code === null) { reject(new SquashfsToolError(`${cmd} was killed by ${String(sig)}`, stderr.trim())); return }
      resolve({ code, stderr })
    })
  })
}

/** Makes a squashfs of dir at out, deterministically for a given epoch. */
export async function makeSquashfs (dir: string, out: string, epoch: number, signal?: AbortSignal): Promise<void> {
  const r = await run('mksquashfs', [dir, out, '-noappend', '-reproducible', '-all-root', '-no-xattrs', '-no-progress', '-quiet',
    '-mkfs-time', String(epoch), '-all-time', String(epoch)], signal)
  if (r.code !== 0) throw new SquashfsToolError(`mksquashfs exited with ${r.code}`, r.stderr.trim())
}

/**
 * Unpacks the squashfs that starts at byte `offset` of file into dest (which
 * must not exist). Errors writing single files (device nodes a user cannot
 * make) are warnings: unsquashfs goes on and exits 2; they are returned.
 */
export async function unpackSquashfs (file: string, offset: number, dest: string, signal?: AbortSignal): Promise<string[]> {
  const r = await run('unsquashfs', ['-no-xattrs', '-no-progress', '-quiet', '-ignore-errors', '-offset', String(offset), '-dest', dest, file], signal)
  if (r.code === 0) return []
  if (r.code === 2) return r.stderr.split('\n').map(l => l.trim()).filter(l => l !== '')
  throw new SquashfsToolError(`unsquashfs exited with ${r.code}`, r.stderr.trim())
}
