/**
 * Build systems pin their inputs: an archive named by an http(s) URL is
 * fetched only together with its expected sha256, streamed to a temp file
 * while hashed, and used only if the hash matches.
 */
import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Transform } from 'node:stream'
import type { ReadableStream as WebReadableStream } from 'node:stream/web'
import { CliError } from './errors.ts'
import { EXIT } from './exit-codes.ts'
import type { ProgressTask } from './progress.ts'
import { scratchPrefix } from '../util/owner.ts'

export function isUrl (text: string): boolean {
  return /^https?:\/\//i.test(text)
}

export interface FetchedFile { path: string, cleanup: () => Promise<void> }

export async function fetchPinned (url: string, sha256: string | undefined, progress?: (total?: number) => ProgressTask): Promise<FetchedFile> {
  if (sha256 === undefined) {
    throw new CliError(`a URL source needs its expected hash: ${url}`, { exitCode: EXIT.usage, hint: 'add --sha256 <64 hex characters> (sha256sum of the file)' })
  }
  const expected = sha256.replace(/^sha256:/, '').toLowerCase()
  if (!/^[a-f0-9]{64}$/.test(expected)) throw new CliError(`--sha256 ${JSON.stringify(sha256)} is not 64 hex characters`, { exitCode: EXIT.usage })
  let res: Response
  try {
    res = await fetch(url, { redirect: 'follow' })
  } catch (err) {
    throw new CliError(`cannot fetch ${url}: ${(err as Error).message}`, { exitCode: EXIT.network })
  }
  if (!res.ok || res.body === null) throw new CliError(`cannot fetch ${url}: HTTP ${res.status}`, { exitCode: res.status === 404 ? EXIT.notFound : EXIT.network })
  const dir = await mkdtemp(join(tmpdir(), scratchPrefix('kiln-fetch-')))
  const cleanup = async (): Promise<void> => { await rm(dir, { recursive: true, force: true }) }
  const path = join(dir, basename(new URL(url).pathname) || 'download')
  const hash = createHash('sha256')
  const total = Number(res.headers.get('content-length') ?? NaN)
  const bar = progress?.(Number.isFinite(total) ? total : undefined)
  let bytes = 0
  const tap = new Transform({
    transform (chunk: Buffer, _enc, cb) { hash.update(chunk); bytes += chunk.length; bar?.update(bytes); cb(null, chunk) }
  })
  try {
    await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), tap, createWriteStream(path))
  } catch (err) {
    await cleanup()
    throw new CliError(`download of ${url} failed: ${(err as Error).message}`, { exitCode: EXIT.network })
  }
  bar?.done()
  const actual = hash.digest('hex')
  if (actual !== expected) {
    await cleanup()
    throw new CliError(`${url} has sha256 ${actual}, expected ${expected}; nothing imported`, { exitCode: EXIT.verification })
  }
  return { path, cleanup }
}
