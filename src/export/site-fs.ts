/**
 * A static site in a directory. Files are written to a temp name, fsynced
 * and renamed; blobs are reflinked from the content store where the
 * filesystem can, else copied.
 */
import { randomBytes } from 'node:crypto'
import { lstat, mkdir, readFile, rename, rm } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { copyBlobFile, isErrno, writeFileAtomic } from '../util/fs.ts'
import type { ObjectStore } from './object-store.ts'

export function createDirObjectStore (root: string): ObjectStore {
  const abs = resolve(root)
  const full = (path: string): string => {
    if (path.split('/').some(c => c === '..' || c === '')) throw new Error(`invalid site path ${JSON.stringify(path)}`)
    return join(abs, ...path.split('/'))
  }
  const stat: ObjectStore['stat'] = async (path) => {
    try {
      const st = await lstat(full(path))
      return st.isFile() ? { size: st.size } : undefined
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined
      throw err
    }
  }
  return {
    location: abs,
    stat,
    get: async (path, maxSize) => {
      const st = await stat(path)
      if (st === undefined) return undefined
      if (st.size > maxSize) throw new Error(`${full(path)} is ${st.size} bytes, over the limit of ${maxSize}`)
      return await readFile(full(path))
    },
    put: async (path, bytes) => {
      await mkdir(dirname(full(path)), { recursive: true })
      await writeFileAtomic(full(path), bytes)
    },
    putBlob: async (path, store, blob) => {
      const dest = full(path)
      await mkdir(dirname(dest), { recursive: true })
      const tmp = `${dest}.tmp-${randomBytes(6).toString('hex')}`
      try {
        await copyBlobFile(await store.path(blob.digest), tmp)
        await rename(tmp, dest)
      } catch (err) {
        await rm(tmp, { force: true })
        throw err
      }
    }
  }
}
