/**
 * The gateway's transport-neutral request and response, the node:http
 * adapter, and small helpers to build responses. Handlers see only
 * GatewayRequest/GatewayResponse, so tests call them in-process (inject) and
 * the same code serves a real socket.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { RegistryApiError } from './errors.ts'

export interface GatewayRequest {
  method: string
  /** Path and query as sent, e.g. `/v2/a/b/tags/list?n=10`. */
  url: string
  /** Header names in lower case; repeated headers joined with ", ". */
  headers: Readonly<Record<string, string | undefined>>
  body: AsyncIterable<Uint8Array>
  /** Whether the request came over TLS (for the token realm URL). */
  secure?: boolean
}

export interface GatewayResponse {
  status: number
  headers: Record<string, string>
  body?: Uint8Array | AsyncIterable<Uint8Array>
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

/** Adapts a GatewayRequest handler to node:http. Errors after the head is sent destroy the socket. */
export function toNodeHandler (handle: (req: GatewayRequest) => Promise<GatewayResponse>, onError: (err: unknown) => void): NodeHandler {
  return (req, res) => {
    const greq: GatewayRequest = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: flattenHeaders(req),
      body: req,
      secure: 'encrypted' in req.socket && req.socket.encrypted === true
    }
    const run = async (): Promise<void> => {
      const out = await handle(greq)
      res.writeHead(out.status, out.headers)
      if (out.body === undefined || req.method === 'HEAD') {
        res.end()
      } else if (out.body instanceof Uint8Array) {
        res.end(out.body)
      } else if (out.body instanceof Readable) {
        await pipeline(out.body, res)
      } else {
        await pipeline(Readable.from(out.body, { objectMode: false }), res)
      }
    }
    run().catch(err => {
      onError(err)
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' })
        res.end('{"errors":[{"code":"UNKNOWN","message":"internal error"}]}')
      } else {
        res.destroy()
      }
    })
  }
}
