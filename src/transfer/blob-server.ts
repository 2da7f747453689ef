/**
 * The serving side of `/kiln/blob/1.0.0` (protocols/blob.md §2–4): answers
 * ranged reads from a BlobReader. A Startable: start() registers the
 * handler with a bound on inbound streams, stop() removes it.
 */
import type { Connection, Stream } from '@libp2p/interface'
import type { Logger } from 'pino'
import { BlobRequestSchema } from '../../protocols/blob.ts'
import type { BlobResponse } from '../../protocols/blob.ts'
import {
  BLOB_IDLE_TIMEOUT_MS, BLOB_MAX_HEADER_BYTES, BLOB_MAX_INBOUND_STREAMS, BLOB_MAX_REQUESTS_PER_STREAM,
  BLOB_PROTOCOL, BLOB_REQUEST_TIMEOUT_MS
} from '../../protocols/constants.ts'
import type { BlobReader } from '../content/index.ts'
import { StreamReader, jsonFrame, parseJsonFrame, sendAll } from '../p2p/index.ts'
import type { KilnNode } from '../p2p/index.ts'
import type { Metrics } from '../metrics/index.ts'

export interface BlobServerInit {
  node: KilnNode
  store: BlobReader
  maxInboundStreams?: number
  log?: Logger
  /** Counts kiln_bytes_served_total by peer. */
  metrics?: Metrics
}

export interface BlobServerStats {
  requests: number
  bytesServed: number
  /** Bytes served per remote peer id. */
  byPeer: Map<string, number>
}

export interface BlobServer {
  start: () => Promise<void>
  stop: () => Promise<void>
  stats: () => BlobServerStats
}

export function createBlobServer (init: BlobServerInit): BlobServer {
  const stats: BlobServerStats = { requests: 0, bytesServed: 0, byPeer: new Map() }
  let started = false

  async function respond (stream: Stream, response: BlobResponse, signal: AbortSignal): Promise<void> {
    await sendAll(stream, jsonFrame(response), signal)
  }

  async function handle (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    // A client sends its next request only after reading the whole response (blob.md §2).
    const reader = new StreamReader(stream, 2 * BLOB_MAX_HEADER_BYTES)
    try {
      for (let n = 0; n < BLOB_MAX_REQUESTS_PER_STREAM; n++) {
        const frame = await reader.readFrame(BLOB_MAX_HEADER_BYTES, { signal: AbortSignal.timeout(BLOB_REQUEST_TIMEOUT_MS), idleTimeoutMs: BLOB_REQUEST_TIMEOUT_MS })
        if (frame === undefined) break
        const signal = AbortSignal.timeout(BLOB_REQUEST_TIMEOUT_MS)
        const parsed = BlobRequestSchema.safeParse(parseJsonFrame(frame))
        if (!parsed.success) {
          await respond(stream, { status: 'bad-request', message: parsed.error.issues[0]?.message.slice(0, 200) ?? 'invalid request' }, signal)
          break
        }
        const { digest, offset, length } = parsed.data
        stats.requests++
        const info = await init.store.info(digest as `sha256:${string}`).catch(() => undefined)
        if (info === undefined) {
          await respond(stream, { status: 'not-found' }, signal)
          continue
        }
        if (offset + length > info.size || (length === 0 && offset > info.size)) {
          await respond(stream, { status: 'invalid-range', size: info.size }, signal)
          continue
        }
        await respond(stream, { status: 'ok', size: info.size, offset, length }, signal)
        if (length === 0) continue
        let sent = 0
        // Each write waits for the muxer to drain; an idle window bounds a stalled reader.
        for await (const chunk of init.store.read(info.digest, { offset, length })) {
          await sendAll(stream, chunk, AbortSignal.timeout(BLOB_IDLE_TIMEOUT_MS))
          sent += chunk.byteLength
        }
        stats.bytesServed += sent
        stats.byPeer.set(peer, (stats.byPeer.get(peer) ?? 0) + sent)
        init.metrics?.inc('kiln_bytes_served_total', { peer }, sent)
      }
      await stream.close({ signal: AbortSignal.timeout(BLOB_IDLE_TIMEOUT_MS) })
    } catch (err) {
      init.log?.debug({ err, peer }, 'blob stream failed')
      stream.abort(err as Error)
    }
  }

  return {
    async start () {
      if (started) return
      await init.node.handle(BLOB_PROTOCOL, handle, { maxInboundStreams: init.maxInboundStreams ?? BLOB_MAX_INBOUND_STREAMS })
      started = true
    },
    async stop () {
      if (!started) return
      await init.node.unhandle(BLOB_PROTOCOL)
      started = false
    },
    stats: () => stats
  }
}
