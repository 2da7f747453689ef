/**
 * The sha256 of a partial blob's file, computed on a worker thread while the
 * blob is written, so that commit finds it (nearly) done and the thread
 * that receives the bytes spends no time hashing them.
 *
 * Terms: the prefix is [0, end of the first written range); bytes are
 * announced to the worker once written and in the prefix, and the worker
 * reads them back from the file. A write that lands on announced bytes (a
 * range written twice) starts a new generation: the worker hashes again
 * from 0, so the digest always describes the bytes last written. A resumed
 * partial announces what it already holds at once.
 *
 * Small blobs, and any blob when the worker cannot run, are hashed from the
 * file at commit on the calling thread.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { Worker } from 'node:worker_threads'

export type HashRequest =
  | { type: 'open', id: number, path: string }
  | { type: 'extend', id: number, generation: number, to: number }
  | { type: 'digest', id: number, generation: number, to: number }
  | { type: 'close', id: number }
export type HashReply = { id: number, hex: string } | { id: number, error: string }

/** Partials smaller than this are hashed at commit: a worker message costs more than their hash. */
export const WORKER_MIN_BYTES = 8 * 1024 * 1024
/** The prefix is announced in steps of at least this: each message wakes the worker (and on a busy machine may cost the writing thread its core). */
export const ANNOUNCE_STEP = 32 * 1024 * 1024

/** The one hash worker of the process, started on first use; it holds the process open only while a digest is awaited. */
class HashWorker {
  private worker: Worker | undefined
  private broken = false
  private nextId = 1
  private readonly waiting = new Map<number, { resolve: (hex: string) => void, reject: (err: Error) => void }>()

  /** A job id, or undefined when no worker can run (the caller hashes by itself). */
  open (path: string): number | undefined {
    const worker = this.start()
    if (worker === undefined) return undefined
    const id = this.nextId++
    this.post({ type: 'open', id, path })
    return id
  }

  post (message: HashRequest): void {
    this.worker?.postMessage(message)
  }

  async digest (id: number, generation: number, to: number): Promise<string> {
    if (this.worker === undefined) throw new Error('hash worker stopped')
    const hex = new Promise<string>((resolve, reject) => { this.waiting.set(id, { resolve, reject }) })
    this.worker.ref()
    this.post({ type: 'digest', id, generation, to })
    return await hex
  }

  private start (): Worker | undefined {
    if (this.worker !== undefined || this.broken) return this.worker
    try {
      const worker = new Worker(new URL('./prefix-hash-worker.ts', import.meta.url))
      worker.unref()
      worker.on('message', (reply: HashReply) => { this.settle(reply) })
      worker.on('error', (err) => { this.stop(err) })
      worker.on('exit', (code) => { this.stop(new Error(`hash worker exited with ${code}`)) })
      this.worker = worker
    } catch {
      this.broken = true
    }
    return this.worker
  }

  private settle (reply: HashReply): void {
    const waiter = this.waiting.get(reply.id)
    if (waiter === undefined) return
    this.waiting.delete(reply.id)
    if (this.waiting.size === 0) this.worker?.unref()
    if ('hex' in reply) waiter.resolve(reply.hex)
    else waiter.reject(new Error(reply.error))
  }

  /** A dead worker is not restarted: its jobs and later ones are hashed by their callers. */
  private stop (err: Error): void {
    if (this.worker === undefined) return
    this.worker = undefined
    this.broken = true
    for (const waiter of this.waiting.values()) waiter.reject(err)
    this.waiting.clear()
  }
}

const shared = new HashWorker()

/** Hashes one partial's file. Not safe for concurrent digest() calls; spent after digest() (make a new one to hash again). */
export class PrefixHasher {
  private readonly path: string
  private id: number | undefined
  private generation = 0
  private announced = 0

  /** `prefixEnd`: how much of the file is already written from 0 (a resumed partial). */
  constructor (path: string, size: number, prefixEnd: number) {
    this.path = path
    this.id = size >= WORKER_MIN_BYTES ? shared.open(path) : undefined
    this.announce(prefixEnd)
  }

  /** After a write of [offset, ...) ended, well or not; `prefixEnd` as the written ranges now say. */
  wrote (offset: number, prefixEnd: number): void {
    if (offset < this.announced) {
      this.generation++
      this.announced = 0
    }
    this.announce(prefixEnd)
  }

  /** The hex sha256 of the file's first `size` bytes; the file must be complete and no write in flight. */
  async digest (size: number): Promise<string> {
    if (this.id !== undefined) {
      try {
        return await shared.digest(this.id, this.generation, size)
      } catch {
        this.id = undefined // the worker failed: hash here
      }
    }
    const hash = createHash('sha256')
    if (size > 0) for await (const chunk of createReadStream(this.path, { start: 0, end: size - 1, highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer)
    return hash.digest('hex')
  }

  /** Whether the worker hashes this file (false for a small one, or once the worker failed). */
  get onWorker (): boolean {
    return this.id !== undefined
  }

  /** Stops hashing (the partial is closed or discarded); safe to call twice. */
  close (): void {
    if (this.id !== undefined) shared.post({ type: 'close', id: this.id })
  }

  private announce (prefixEnd: number): void {
    if (prefixEnd - this.announced < ANNOUNCE_STEP) return
    this.announced = prefixEnd
    if (this.id !== undefined) shared.post({ type: 'extend', id: this.id, generation: this.generation, to: prefixEnd })
  }
}
