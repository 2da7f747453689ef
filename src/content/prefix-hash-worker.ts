/**
 * Worker thread of ./prefix-hasher.ts: hashes the files of partial blobs
 * from the start as far as the owning thread says they are written, reading
 * them back (from the page cache: they were just written) so the owning
 * thread spends no time on sha256. Messages are handled between slices, so
 * a restart or a new target is seen within one slice.
 */
import { createHash } from 'node:crypto'
import type { Hash } from 'node:crypto'
import { closeSync, openSync, readSync } from 'node:fs'
import { parentPort } from 'node:worker_threads'
import type { HashReply, HashRequest } from './prefix-hasher.ts'

const SLICE = 1024 * 1024

interface Job {
  fd: number
  generation: number
  hash: Hash
  hashedTo: number
  target: number
  /** Set by a `digest` request: reply once hashedTo reaches it. */
  want?: number
}

const port = parentPort
if (port === null) throw new Error('prefix-hash-worker runs as a worker thread')
const jobs = new Map<number, Job>()
const buffer = Buffer.allocUnsafeSlow(SLICE)
let scheduled = false

const reply = (message: HashReply): void => { port.postMessage(message) }

const fail = (id: number, err: unknown): void => {
  const job = jobs.get(id)
  jobs.delete(id)
  if (job !== undefined) try { closeSync(job.fd) } catch { /* already gone */ }
  reply({ id, error: (err as Error).message ?? String(err) })
}

/** One slice of one job with work to do, then yields to pending messages. */
const step = (): void => {
  scheduled = false
  for (const [id, job] of jobs) {
    if (job.hashedTo >= job.target) continue
    try {
      const length = Math.min(SLICE, job.target - job.hashedTo)
      const n = readSync(job.fd, buffer, 0, length, job.hashedTo)
      if (n === 0) throw new Error(`file ends at ${job.hashedTo}, before ${job.target}`)
      job.hash.update(buffer.subarray(0, n))
      job.hashedTo += n
      settle(id, job)
    } catch (err) {
      fail(id, err)
    }
    break
  }
  schedule()
}

const settle = (id: number, job: Job): void => {
  if (job.want === undefined || job.hashedTo < job.want) return
  jobs.delete(id)
  closeSync(job.fd)
  reply({ id, hex: job.hash.digest('hex') })
}

const schedule = (): void => {
  if (scheduled) return
  for (const job of jobs.values()) {
    if (job.hashedTo < job.target) { scheduled = true; setImmediate(step); return }
  }
}

port.on('message', (message: HashRequest) => {
  const job = jobs.get(message.id)
  try {
    if (message.type === 'open') {
      jobs.set(message.id, { fd: openSync(message.path, 'r'), generation: 0, hash: createHash('sha256'), hashedTo: 0, target: 0 })
    } else if (job === undefined) {
      if (message.type !== 'close') reply({ id: message.id, error: 'no such hash job' })
    } else if (message.type === 'close') {
      jobs.delete(message.id)
      closeSync(job.fd)
    } else {
      if (message.generation !== job.generation) {
        // Bytes already hashed were written again: start over.
        job.generation = message.generation
        job.hash = createHash('sha256')
        job.hashedTo = 0
        job.target = 0
      }
      job.target = Math.max(job.target, message.to)
      if (message.type === 'digest') {
        job.want = message.to
        settle(message.id, job)
      }
    }
  } catch (err) {
    fail(message.id, err)
  }
  schedule()
})
