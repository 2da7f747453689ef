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
  BLOB_IDLE_TIMEOUT_MS, BLOB_MAX_DIRECT_CHANNELS, BLOB_MAX_HEADER_BYTES, BLOB_MAX_INBOUND_STREAMS, BLOB_MAX_REQUESTS_PER_STREAM,
  BLOB_PROTOCOL, BLOB_REQUEST_TIMEOUT_MS
} from '../../protocols/constants.ts'
import type { BlobReader } from '../content/index.ts'
import { jsonFrame, parseJsonFrame, streamChannel } from '../p2p/index.ts'
import type { ByteChannel } from '../p2p/index.ts'
import type { KilnNode } from '../p2p/index.ts'
import type { Metrics } from '../metrics/index.ts'

/** What a served chunk is read into, when the channel allows reuse (see serve). */
const SERVE_CHUNK_BYTES = 1024 * 1024

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

  async function respond (channel: ByteChannel, response: BlobResponse, signal: AbortSignal): Promise<void> {
    await channel.send(jsonFrame(response), signal)
  }

  /** Serves one blob stream, carried by a libp2p stream or a direct channel (blob.md §2). */
  async function serve (channel: ByteChannel, peer: string): Promise<void> {
    let buffer: Buffer | undefined
    try {
      for (let n = 0; n < BLOB_MAX_REQUESTS_PER_STREAM; n++) {
        const frame = await channel.readFrame(BLOB_MAX_HEADER_BYTES, { signal: AbortSignal.timeout(BLOB_REQUEST_TIMEOUT_MS), idleTimeoutMs: BLOB_REQUEST_TIMEOUT_MS })
        if (frame === undefined) break
        const signal = AbortSignal.timeout(BLOB_REQUEST_TIMEOUT_MS)
        const parsed = BlobRequestSchema.safeParse(parseJsonFrame(frame))
        if (!parsed.success) {
          await respond(channel, { status: 'bad-request', message: parsed.error.issues[0]?.message.slice(0, 200) ?? 'invalid request' }, signal)
          break
        }
        const { digest, offset, length } = parsed.data
        stats.requests++
        const info = await init.store.info(digest as `sha256:${string}`).catch(() => undefined)
        if (info === undefined) {
          await respond(channel, { status: 'not-found' }, signal)
          continue
        }
        if (offset + length > info.size || (length === 0 && offset > info.size)) {
          await respond(channel, { status: 'invalid-range', size: info.size }, signal)
          continue
        }
        await respond(channel, { status: 'ok', size: info.size, offset, length }, signal)
        if (length === 0) continue
        let sent = 0
        // Each write waits for the muxer to drain; an idle window bounds a stalled reader. A channel
        // that says when it has taken a chunk (a direct one) gets every chunk read into the same
        // buffer: nothing is allocated per chunk, so serving a blob gives the collector no work.
        if (channel.sendConsumed !== undefined) buffer ??= Buffer.allocUnsafeSlow(SERVE_CHUNK_BYTES)
        for await (const chunk of init.store.read(info.digest, { offset, length, ...(buffer !== undefined ? { buffer } : {}) })) {
          if (buffer !== undefined && channel.sendConsumed !== undefined) await channel.sendConsumed(chunk, AbortSignal.timeout(BLOB_IDLE_TIMEOUT_MS))
          else await channel.send(chunk, AbortSignal.timeout(BLOB_IDLE_TIMEOUT_MS))
          sent += chunk.byteLength
        }
        stats.bytesServed += sent
        stats.byPeer.set(peer, (stats.byPeer.get(peer) ?? 0) + sent)
        init.metrics?.inc('kiln_bytes_served_total', { peer }, sent)
      }
      await channel.close(AbortSignal.timeout(BLOB_IDLE_TIMEOUT_MS))
    } catch (err) {
      init.log?.debug({ err, peer }, 'blob stream failed')
      channel.abort(err as Error)
    }
  }

  async function handle (stream: Stream, connection: Connection): Promise<void> {
    // A client sends its next request only after reading the whole response (blob.md §2).
    await serve(streamChannel(stream, 2 * BLOB_MAX_HEADER_BYTES), connection.remotePeer.toString())
  }

  return {
    async start () {
      if (started) return
      await init.node.handle(BLOB_PROTOCOL, handle, { maxInboundStreams: init.maxInboundStreams ?? BLOB_MAX_INBOUND_STREAMS })
      // The same protocol on direct channels (protocols/transport.md §5), for clients that open one.
      init.node.services.direct.handle(BLOB_PROTOCOL, async (channel) => { await serve(channel, channel.remotePeer.toString()) }, {
        maxInbound: BLOB_MAX_DIRECT_CHANNELS,
        maxInboundPerPeer: init.maxInboundStreams ?? BLOB_MAX_INBOUND_STREAMS,
        maxBuffered: 2 * BLOB_MAX_HEADER_BYTES
      })
      started = true
    },
    async stop () {
      if (!started) return
      init.node.services.direct.unhandle(BLOB_PROTOCOL)
      await init.node.unhandle(BLOB_PROTOCOL)
      started = false
    },
    stats: () => stats
  }
}
