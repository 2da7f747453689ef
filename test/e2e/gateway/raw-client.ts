/**
 * A hand-driven HTTP/1.1 client on a raw socket, for tests that control
 * when each body byte is sent (slow, stalled and oversized uploads): write
 * the head, then body pieces at the test's pace, and read the one response.
 */
import { connect } from 'node:net'
import type { Socket } from 'node:net'

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
}

export interface RawExchange {
  socket: Socket
  /** Writes a piece of the body; resolves once the socket took it (false: it is closed). */
  send: (piece: Uint8Array) => Promise<boolean>
  /** The response, once its head and Content-Length bytes have arrived. */
  response: Promise<RawResponse>
  /** Resolves when the connection is closed (by either side). */
  closed: Promise<void>
}

/** Opens a connection and sends a request head; the body is up to the caller. */
export async function rawRequest (port: number, method: string, path: string, headers: Record<string, string>): Promise<RawExchange> {
  const socket = connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  socket.on('error', () => { /* a reset after the response is expected in some tests; `closed` reports it */ })
  const closed = new Promise<void>(resolve => { socket.once('close', () => { resolve() }) })
  const response = new Promise<RawResponse>((resolve, reject) => {
    let buf = Buffer.alloc(0)
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d])
      const end = buf.indexOf('\r\n\r\n')
      if (end < 0) return
      const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n')
      const head: Record<string, string> = {}
      for (const line of lines) {
        const colon = line.indexOf(':')
        head[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
      }
      const length = Number(head['content-length'] ?? 0)
      if (buf.byteLength < end + 4 + length) return
      socket.off('data', onData)
      resolve({ status: Number(statusLine?.split(' ')[1]), headers: head, body: buf.subarray(end + 4, end + 4 + length).toString('utf8') })
    }
    socket.on('data', onData)
    void closed.then(() => { reject(new Error(`connection closed before a response to ${method} ${path}`)) })
  })
  response.catch(() => { /* awaited by the test when it expects one */ })
  const head = [`${method} ${path} HTTP/1.1`, 'host: 127.0.0.1', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n')
  socket.write(head)
  const send = async (piece: Uint8Array): Promise<boolean> => await new Promise(resolve => {
    if (socket.destroyed || !socket.writable) { resolve(false); return }
    socket.write(piece, err => { resolve(err === undefined || err === null) })
  })
  return { socket, send, response, closed }
}
