/**
 * Small filesystem helpers shared by the modules that write files, and the
 * modes of what kiln keeps in its data dir (docs/security.md): private to
 * the owner whatever the umask, since mkdir and open take these modes as
 * they are when the umask only removes bits (a umask of 000 included).
 */
import { randomBytes } from 'node:crypto'
import { constants as fsc } from 'node:fs'
import { chmod, copyFile, lstat, mkdir, open, readdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'

/** Dirs kiln makes in the data dir: nobody but the owner lists or enters them. */
export const PRIVATE_DIR_MODE = 0o700
/** Files kiln writes in the data dir: keys, databases, records, temp files. */
export const PRIVATE_FILE_MODE = 0o600
/** A stored blob: its bytes never change, so not even the owner may write. */
export const BLOB_FILE_MODE = 0o400
/** A blob copied out of the store (OCI layout, static site, pulled file): readable by all, as exports always were. */
export const EXPORTED_BLOB_MODE = 0o444

/** Whether err is a Node system error with this code (ENOENT, EEXIST...). */
export function isErrno (err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code
}

/** mkdir -p where every dir it creates is PRIVATE_DIR_MODE (existing ones are left as they are). */
export async function mkdirPrivate (path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: PRIVATE_DIR_MODE })
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

/**
 * Copies a stored blob's file (a reflink where the filesystem can) to dest
 * with EXPORTED_BLOB_MODE: copyFile keeps the source's mode, and a store's
 * blobs are private.
 */
export async function copyBlobFile (blobPath: string, dest: string): Promise<void> {
  await copyFile(blobPath, dest, fsc.COPYFILE_FICLONE)
  await chmod(dest, EXPORTED_BLOB_MODE)
}

/**
 * Paths kept below this length while a tree is removed: well under the
 * kernel's PATH_MAX (4096), so that a name of up to 255 bytes still fits.
 */
const SHALLOW_PATH = 2048

/**
 * Removes a tree whose dirs may deny their owner write or search: an overlay
 * work dir (the kernel leaves `work/work` at mode 000), an unpacked image
 * (`/proc` is 0555), or a tree nested deeper than a path can name (a build
 * step can make one inside its upper dir: every path call on its leaves
 * fails with ENAMETOOLONG). Such subtrees are first moved up to the top of
 * the tree, under a fresh name, by a rename of a path that is still short.
 */
export async function removeTree (path: string): Promise<void> {
  try { await rm(path, { recursive: true, force: true }); return } catch { /* fix modes and depth, retry */ }
  const st = await lstat(path).catch(() => undefined)
  if (st?.isDirectory() !== true) { await rm(path, { force: true }); return }
  let moved = 0
  const dirs = [path]
  for (let dir = dirs.pop(); dir !== undefined; dir = dirs.pop()) {
    await chmod(dir, 0o700).catch(() => {})
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (!e.isDirectory()) continue
      let sub = join(dir, e.name)
      if (Buffer.byteLength(sub) > SHALLOW_PATH) {
        const up = join(path, `.deep-${moved++}-${randomBytes(4).toString('hex')}`)
        await rename(sub, up)
        sub = up
      }
      dirs.push(sub)
    }
  }
  await rm(path, { recursive: true, force: true })
}
