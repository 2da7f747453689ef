/** Small filesystem helpers shared by the modules that write files others read. */
import { randomBytes } from 'node:crypto'
import { open, rename, rm } from 'node:fs/promises'

/** Whether err is a Node system error with this code (ENOENT, EEXIST...). */
export function isErrno (err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code
}

/** Writes a file atomically: temp file beside it, fsync, rename; readers see the old bytes or the new ones. */
export async function writeFileAtomic (path: string, data: Uint8Array, mode = 0o644): Promise<void> {
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`
  const fh = await open(tmp, 'wx', mode)
  try {
    await fh.writeFile(data)
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}
