/**
 * The gateway's transport-neutral request and response, the node:http
 * adapter, and small helpers to build responses. Handlers see only
 * GatewayRequest/GatewayResponse, so tests call them in-process (inject) and
 * the same code serves a real socket.
 */
import { createReadStream } from 'node:fs'
import { open } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { errorBody, RegistryApiError } from './errors.ts'
import { NodeRequestBody } from './request-body.ts'

export interface GatewayRequest {
  method: string
  /** Path and query as sent, e.g. `/v2/a/b/tags/list?n=10`. */
  url: string
  /** Header names in lower case; repeated headers joined with ", ". */
  headers: Readonly<Record<string, string | undefined>>
  body: AsyncIterable<Uint8Array>
  /** Whether the request came over TLS (for the token realm URL). */
  secure?: boolean
  /** The client's IP address (failed-login limits); absent in-process. */
  remoteAddress?: string
}

export interface GatewayResponse {
  status: number
  headers: Record<string, string>
  body?: Uint8Array | AsyncIterable<Uint8Array>
}

/**
 * A byte range of a file as a response body: served over node:http by
 * reading into two buffers in turn and writing each straight to the socket
 * (no stream machinery, no hashing: the file is a verified blob); iterable
 * like any body for in-process callers.
 */
export class FileBody implements AsyncIterable<Uint8Array> {
  readonly path: string
  readonly offset: number
  readonly length: number
  readonly chunkSize: number
  constructor (path: string, offset: number, length: number, chunkSize: number) {
    this.path = path
    this.offset = offset
    this.length = length
    this.chunkSize = chunkSize
  }

  [Symbol.asyncIterator] (): AsyncIterator<Uint8Array> {
    if (this.length === 0) return (async function * () {})()
    return createReadStream(this.path, { start: this.offset, end: this.offset + this.length - 1, highWaterMark: this.chunkSize })[Symbol.asyncIterator]()
  }
}

/**
 * A body whose chunks are views of two buffers it fills in turn: a chunk's
 * memory is filled again when the chunk after the next one is asked for.
 * Written by sendReused, which waits for each write to finish before asking
 * for the chunk after the next, so no buffer is allocated per chunk (the
 * gateway's streaming pull-through, ./arriving.ts).
 */
export class ReusedBuffersBody implements AsyncIterable<Uint8Array> {
  readonly source: AsyncIterable<Uint8Array>
  constructor (source: AsyncIterable<Uint8Array>) { this.source = source }
  [Symbol.asyncIterator] (): AsyncIterator<Uint8Array> { return this.source[Symbol.asyncIterator]() }
}

/** Writes a chunk to a response; resolves once the socket has taken it (its memory may then be reused). */
async function writeChunk (res: ServerResponse, chunk: Uint8Array): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    if (res.destroyed) { reject(Object.assign(new Error('client went away'), { code: 'ERR_STREAM_PREMATURE_CLOSE' })); return }
    res.write(chunk, err => { if (err === undefined || err === null) resolve(); else reject(err) })
  })
}

/** Writes a ReusedBuffersBody: one write in flight while the next chunk is read. */
async function sendReused (body: ReusedBuffersBody, res: ServerResponse): Promise<void> {
  let writing: Promise<void> | undefined
  try {
    for await (const chunk of body) {
      await writing
      writing = writeChunk(res, chunk)
    }
    await writing
  } finally {
    // A failed read leaves a write in flight: its outcome no longer matters.
    writing?.catch(() => {})
  }
  await new Promise<void>(resolve => { res.end(resolve) })
}

/** Writes a FileBody to a response: read the next chunk while the previous one is being written. */
async function sendFile (body: FileBody, res: ServerResponse): Promise<void> {
  const file = await open(body.path, 'r')
  try {
    const buffers = [Buffer.allocUnsafe(Math.min(body.chunkSize, body.length)), Buffer.allocUnsafe(Math.min(body.chunkSize, body.length))]
    let position = body.offset
    let left = body.length
    const readInto = async (buf: Buffer): Promise<Buffer> => {
      const { bytesRead } = await file.read(buf, 0, Math.min(buf.byteLength, left), position)
      if (bytesRead === 0) throw new Error(`${body.path} ended ${left} bytes early`)
      position += bytesRead
      left -= bytesRead
      return buf.subarray(0, bytesRead)
    }
    const write = async (chunk: Buffer): Promise<void> => { await writeChunk(res, chunk) }
    let current = body.length === 0 ? undefined : await readInto(buffers[0] as Buffer)
    let turn = 1
    while (current !== undefined) {
      const writing = write(current)
      const next = left > 0 ? readInto(buffers[turn] as Buffer) : undefined
      await writing
      current = next === undefined ? undefined : await next
      turn ^= 1
    }
    await new Promise<void>(resolve => { res.end(resolve) })
  } finally {
    await file.close()
  }
}

/** Errors that only mean the client closed the connection early. */
export function isClientGone (err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED'
}

export type NodeHandler = (req: IncomingMessage, res: ServerResponse) => void

export function jsonResponse (status: number, value: unknown, headers: Record<string, string> = {}, contentType = 'application/json'): GatewayResponse {
  const body = Buffer.from(JSON.stringify(value))
  return { status, headers: { 'content-type': contentType, 'content-length': String(body.byteLength), ...headers }, body }
}

export function emptyResponse (status: number, headers: Record<string, string> = {}): GatewayResponse {
  return { status, headers: { 'content-length': '0', ...headers } }
}

/** Reads a whole request body, refusing more than `limit` bytes with `tooLarge`. */
export async function readBody (body: AsyncIterable<Uint8Array>, limit: number, tooLarge: () => RegistryApiError): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  let total = 0
  for await (const chunk of body) {
    total += chunk.byteLength
    if (total > limit) throw tooLarge()
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

/** Drains a body we do not use, so the connection can be reused. */
export async function discardBody (body: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const _ of body) { /* discard */ }
}

function flattenHeaders (req: IncomingMessage): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {}
  for (const [k, v] of Object.entries(req.headers)) out[k] = Array.isArray(v) ? v.join(', ') : v
  return out
}

export interface NodeHandlerOptions {
  /** Longest wait for the next bytes of a request body (./request-body.ts). */
  bodyIdleTimeoutMs: number
  /** Longest time spent dropping the rest of a body a handler did not read, before its response. */
  bodyLingerMs: number
}

/**
 * Adapts a GatewayRequest handler to node:http, with idle-timed request
 * bodies (./request-body.ts). Errors after the head is sent destroy the socket.
 */
export function toNodeHandler (handle: (req: GatewayRequest) => Promise<GatewayResponse>, onError: (err: unknown) => void, options: NodeHandlerOptions): NodeHandler {
  return (req, res) => {
    const body = new NodeRequestBody(req, options.bodyIdleTimeoutMs)
    const greq: GatewayRequest = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: flattenHeaders(req),
      body,
      secure: 'encrypted' in req.socket && req.socket.encrypted === true,
      ...(req.socket.remoteAddress === undefined ? {} : { remoteAddress: req.socket.remoteAddress })
    }
    // An early answer (the handler did not read the whole body) waits for the rest of the body (./request-body.ts).
    const awaitRest = async (): Promise<void> => {
      if (!await body.discardRest(options.bodyLingerMs)) res.setHeader('connection', 'close')
    }
    const run = async (): Promise<void> => {
      const out = await handle(greq)
      await awaitRest()
      res.writeHead(out.status, out.headers)
      if (out.body === undefined || req.method === 'HEAD') {
        res.end()
      } else if (out.body instanceof Uint8Array) {
        res.end(out.body)
      } else if (out.body instanceof FileBody) {
        await sendFile(out.body, res)
      } else if (out.body instanceof ReusedBuffersBody) {
        await sendReused(out.body, res)
      } else if (out.body instanceof Readable) {
        await pipeline(out.body, res)
      } else {
        await pipeline(Readable.from(out.body, { objectMode: false }), res)
      }
    }
    run().catch(async err => {
      onError(err)
      if (!res.headersSent) {
        await awaitRest()
        const internal = new RegistryApiError('INTERNAL')
        res.writeHead(internal.status, { 'content-type': 'application/json' })
        res.end(JSON.stringify(errorBody(internal)))
      } else {
        res.destroy()
      }
    }).finally(() => { void body.finish(options.bodyLingerMs) })
  }
}
