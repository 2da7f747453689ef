/**
 * The scrape endpoint: GET /metrics over plain HTTP (node:http). Meant for a
 * loopback or cluster-internal address that Prometheus scrapes; it serves no
 * secrets but reveals peer ids, so keep it off public interfaces.
 */
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { CONTENT_TYPE, METRICS_PATH } from './constants.ts'
import { MetricsAddressError, MetricsListenError } from './errors.ts'
import type { Metrics } from './metrics.ts'

export interface MetricsServerInit {
  metrics: Metrics
  /** HOST:PORT (IPv6 in brackets); port 0 picks a free one. */
  listen: string
}

export interface MetricsServer {
  /** e.g. http://127.0.0.1:9464/metrics */
  readonly url: string
  readonly port: number
  /** Stops listening and closes open connections. Safe to call twice. */
  close: () => Promise<void>
}

export function splitHostPort (listen: string): { host: string, port: number } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(listen)
  const port = Number(m?.[3])
  if (m === null || port > 65535) throw new MetricsAddressError(`metrics.listen must be HOST:PORT, got ${JSON.stringify(listen)}`)
  return { host: m[1] ?? m[2] as string, port }
}

async function answer (metrics: Metrics, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0]
  if (path !== METRICS_PATH) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found; metrics are at ${METRICS_PATH}\n`)
    return
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n')
    return
  }
  const body = Buffer.from(await metrics.render())
  res.writeHead(200, { 'content-type': CONTENT_TYPE, 'content-length': body.length, 'cache-control': 'no-store' })
  res.end(req.method === 'HEAD' ? undefined : body)
}

export async function startMetricsServer (init: MetricsServerInit): Promise<MetricsServer> {
  const { host, port } = splitHostPort(init.listen)
  const server = createServer((req, res) => {
    answer(init.metrics, req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' })
      res.end(`metrics failed: ${(err as Error).message}\n`)
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', err => { reject(new MetricsListenError(`cannot serve metrics on ${init.listen}: ${err.message}`, { cause: err })) })
    server.listen(port, host, () => { resolve() })
  })
  const bound = (server.address() as AddressInfo).port
  const urlHost = host.includes(':') ? `[${host}]` : host
  let closed: Promise<void> | undefined
  return {
    url: `http://${urlHost}:${bound}${METRICS_PATH}`,
    port: bound,
    close: async () => {
      closed ??= new Promise<void>(resolve => {
        server.close(() => { resolve() })
        server.closeAllConnections()
      })
      await closed
    }
  }
}
