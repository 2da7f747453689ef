/**
 * Blob upload sessions (spec §"Pushing blobs"): each session is a temp file
 * under the gateway's upload dir that PATCH requests append to in order, and
 * that PUT moves into the content store (FileIngester.ingestFile: hashed,
 * verified, renamed), so a push needs its size free once, not twice. A
 * session untouched for UPLOAD_SESSION_TTL_MS is discarded with its file, and
 * so is one whose write found the disk full, so that the space is free for
 * the next push at once. Sessions live in memory: a restarted gateway
 * forgets them (clients then restart the upload).
 */
import { randomUUID } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { BlobInfo, FileIngester } from '../content/index.ts'
import type { Digest } from '../content/digest.ts'
import { MAX_UPLOAD_SESSIONS } from './constants.ts'
import { isStorageFull, RegistryApiError } from './errors.ts'
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../util/fs.ts'

export interface UploadSession {
  readonly id: string
  readonly repository: string
  /** Bytes received so far: the next PATCH must start here. */
  offset: number
  expiresAt: number
  busy: boolean
}

export interface UploadManager {
  start: (repository: string) => Promise<UploadSession>
  /** Throws BLOB_UPLOAD_UNKNOWN for an unknown, expired or other repository's session. */
  get: (repository: string, id: string) => UploadSession
  /**
   * Appends a chunk. `start`, when the client gave a Content-Range, must
   * equal the offset (else RANGE_INVALID). What arrived before a failure is
   * kept for a resume, unless the disk is full: then the session is dropped.
   */
  append: (session: UploadSession, body: AsyncIterable<Uint8Array>, start?: number) => Promise<void>
  /** Appends the last chunk, moves the file into the store (verified), ends the session (also on failure). */
  complete: (session: UploadSession, digest: Digest, body: AsyncIterable<Uint8Array>) => Promise<BlobInfo>
  cancel: (session: UploadSession) => Promise<void>
  /** Discards expired sessions; returns how many. */
  sweep: (now?: number) => Promise<number>
  /** Discards every session. */
  close: () => Promise<void>
}

export interface UploadManagerInit {
  /** Best on the store's filesystem: a finished upload is then renamed into it, not copied. */
  dir: string
  store: FileIngester
  ttlMs: number
  /** Default MAX_UPLOAD_SESSIONS. */
  maxSessions?: number
}

/** `0-<last byte>` as the Range header of upload responses; `0-0` when empty, as distribution does. */
export function uploadRange (session: UploadSession): string {
  return `0-${Math.max(0, session.offset - 1)}`
}

export function createUploadManager (init: UploadManagerInit): UploadManager {
  const sessions = new Map<string, UploadSession>()
  const file = (s: UploadSession): string => join(init.dir, s.id)
  const touch = (s: UploadSession): void => { s.expiresAt = Date.now() + init.ttlMs }

  const unknown = (id: string): RegistryApiError => new RegistryApiError('BLOB_UPLOAD_UNKNOWN', `no upload session ${id}`)

  const drop = async (s: UploadSession): Promise<void> => {
    sessions.delete(s.id)
    await rm(file(s), { force: true })
  }

  const write = async (s: UploadSession, body: AsyncIterable<Uint8Array>): Promise<void> => {
    s.busy = true
    try {
      await pipeline(body, createWriteStream(file(s), { flags: 'a' }))
    } catch (err) {
      if (isStorageFull(err)) await drop(s)
      throw err
    } finally {
      // Whatever arrived is kept (a client may resume from the reported Range).
      s.offset = (await stat(file(s)).catch(() => ({ size: 0 }))).size
      s.busy = false
      touch(s)
    }
  }

  const rangeError = (s: UploadSession, message: string): RegistryApiError =>
    new RegistryApiError('RANGE_INVALID', message, {
      headers: { range: uploadRange(s), location: `/v2/${s.repository}/blobs/uploads/${s.id}`, 'docker-upload-uuid': s.id }
    })

  return {
    start: async (repository) => {
      if (sessions.size >= (init.maxSessions ?? MAX_UPLOAD_SESSIONS)) {
        for (const s of [...sessions.values()]) if (s.expiresAt < Date.now() && !s.busy) await drop(s)
        if (sessions.size >= (init.maxSessions ?? MAX_UPLOAD_SESSIONS)) {
          throw new RegistryApiError('TOOMANYREQUESTS', 'too many open uploads; finish or cancel some', { headers: { 'retry-after': '60' } })
        }
      }
      await mkdir(init.dir, { recursive: true, mode: PRIVATE_DIR_MODE })
      const s: UploadSession = { id: randomUUID(), repository, offset: 0, expiresAt: 0, busy: false }
      touch(s)
      await pipeline(async function * () {}, createWriteStream(join(init.dir, s.id), { mode: PRIVATE_FILE_MODE }))
      sessions.set(s.id, s)
      return s
    },
    get: (repository, id) => {
      const s = sessions.get(id)
      if (s === undefined || s.repository !== repository || s.expiresAt < Date.now()) throw unknown(id)
      return s
    },
    append: async (s, body, start) => {
      if (s.busy) throw rangeError(s, 'another chunk of this upload is in flight')
      if (start !== undefined && start !== s.offset) throw rangeError(s, `chunk starts at ${start}, expected ${s.offset}`)
      await write(s, body)
    },
    complete: async (s, digest, body) => {
      if (s.busy) throw rangeError(s, 'another chunk of this upload is in flight')
      try {
        await write(s, body)
        return await init.store.ingestFile(file(s), { digest, size: s.offset })
      } finally {
        await drop(s)
      }
    },
    cancel: drop,
    sweep: async (now = Date.now()) => {
      const expired = [...sessions.values()].filter(s => s.expiresAt < now && !s.busy)
      for (const s of expired) await drop(s)
      return expired.length
    },
    close: async () => {
      for (const s of [...sessions.values()]) await drop(s)
    }
  }
}
