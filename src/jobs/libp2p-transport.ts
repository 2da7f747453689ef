/**
 * The job protocol over libp2p (protocols/job.md §4): a JobTransport that
 * publishes job frames on the gossipsub topic of each platform, finds the
 * agents of a platform through the DHT (protocols/capability.md §4) so a
 * job can also be sent to those its gossip may not reach, and sends every
 * other frame on `/kiln/job/1.0.0` streams.
 *
 * A stream carries one or more frames from the side that opened it, each
 * prefixed by its length as an unsigned varint (it-length-prefixed), and is
 * then closed; there are no replies on the same stream. Inbound streams are
 * bounded in number, frame size, frames per stream and time.
 *
 * A Startable: start() registers the handler and the gossip listener,
 * stop() removes both.
 *
 * @example
 * ```ts
 * const transport = createLibp2pJobTransport({ node })
 * await transport.start()
 * const requester = createRequester({ key, transport, policy, blobs })
 * ...
 * await transport.stop()
 * ```
 */
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { TimeoutError } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Message } from '@libp2p/gossipsub'
import * as lp from 'it-length-prefixed'
import { JOB_PROTOCOL, MAX_FRAME_BYTES, STREAM_TIMEOUT_MS } from '../../protocols/job.ts'
import type { FrameHandler, JobTransport } from './transport.ts'
import type { KilnNode } from '../p2p/index.ts'
import { findAgents, sendAll } from '../p2p/index.ts'

/** Inbound `/kiln/job/1.0.0` streams open at once per connection. */
export const JOB_MAX_INBOUND_STREAMS = 32
/** Frames one stream may carry (a sender batches a log burst, never more). */
export const JOB_MAX_FRAMES_PER_STREAM = 64
/** How long publish waits for a subscriber of the topic to be known, so a fresh node's first job is not lost. */
export const JOB_PUBLISH_WAIT_MS = 5_000
/**
 * When publish had to wait for the topic's first subscriber (a node that
 * has just joined), how long it then waits for the other connected peers'
 * subscriptions. Short: connected peers of other platforms never
 * subscribe; and an agent the gossip misses is sent the job by the
 * requester (protocols/job.md §5).
 */
export const JOB_PUBLISH_SETTLE_MS = 100
/** Bound on one search for the agents of a platform; the requester also ends it when the offer window closes. */
export const JOB_SEARCH_TIMEOUT_MS = 10_000

export interface Libp2pJobTransportInit {
  node: KilnNode
  /** Longest time for one stream (dial, every write, close; or every read); default STREAM_TIMEOUT_MS. */
  timeoutMs?: number
  publishWaitMs?: number
  maxInboundStreams?: number
  log?: (level: 'debug' | 'warn', message: string) => void
}

export interface Libp2pJobTransport extends JobTransport {
  start: () => Promise<void>
  stop: () => Promise<void>
}

export function createLibp2pJobTransport (init: Libp2pJobTransportInit): Libp2pJobTransport {
  const node = init.node
  const timeoutMs = init.timeoutMs ?? STREAM_TIMEOUT_MS
  const handlers = new Set<FrameHandler>()
  const topics = new Set<string>()
  const log = init.log ?? (() => {})
  let started = false

  const deliver = (frame: Uint8Array, from: string, via: 'gossip' | 'stream'): void => {
    for (const h of handlers) {
      try { h(frame, from, via) } catch (err) { log('warn', `frame handler threw: ${(err as Error).message}`) }
    }
  }

  const onMessage = (evt: CustomEvent<Message>): void => {
    const m = evt.detail
    if (!topics.has(m.topic)) return
    // Only signed gossip names its publisher; an unsigned message has no sender to answer.
    if (m.type !== 'signed') return
    if (m.data.byteLength > MAX_FRAME_BYTES) return
    deliver(m.data, m.from.toString(), 'gossip')
  }

  const handle = async (stream: Stream, connection: Connection): Promise<void> => {
    const from = connection.remotePeer.toString()
    const signal = AbortSignal.timeout(timeoutMs)
    const onAbort = (): void => { stream.abort(new TimeoutError(`job stream from ${from} took longer than ${timeoutMs} ms`)) }
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      let n = 0
      for await (const frame of lp.decode(stream, { maxDataLength: MAX_FRAME_BYTES })) {
        if (++n > JOB_MAX_FRAMES_PER_STREAM) throw new RangeError(`more than ${JOB_MAX_FRAMES_PER_STREAM} frames on one stream`)
        deliver(frame.subarray(), from, 'stream')
      }
      await stream.close({ signal })
    } catch (err) {
      log('debug', `job stream from ${from} failed: ${(err as Error).message}`)
      stream.abort(err as Error)
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }

  /**
   * Returns at once when some peer is known to subscribe to the topic: the
   * node has been connected long enough to hear subscriptions, and the
   * publication is on the clock of the award. Otherwise waits until some
   * peer subscribes (at most publishWaitMs), and then a little longer
   * (JOB_PUBLISH_SETTLE_MS) for the subscriptions of the other connected
   * peers: a node that has just joined learns them one connection at a
   * time, and a job published to the first agent only reaches the others a
   * gossip round later.
   */
  const waitForSubscribers = async (topic: string): Promise<void> => {
    const pubsub = node.services.pubsub
    const everyone = (): boolean => pubsub.getSubscribers(topic).length >= node.getPeers().length
    if (pubsub.getSubscribers(topic).length > 0) return
    await new Promise<void>(resolve => {
      let settle: NodeJS.Timeout | undefined
      const done = (): void => { clearTimeout(timer); clearTimeout(settle); pubsub.removeEventListener('subscription-change', check); resolve() }
      const check = (): void => {
        if (pubsub.getSubscribers(topic).length === 0) return
        if (everyone()) done()
        else settle ??= setTimeout(done, JOB_PUBLISH_SETTLE_MS)
      }
      const timer = setTimeout(done, init.publishWaitMs ?? JOB_PUBLISH_WAIT_MS)
      pubsub.addEventListener('subscription-change', check)
      check()
    })
  }

  /**
   * Opens a job stream. The addresses this node knows for a peer can be
   * stale: a requester runs each `kiln submit` on a new port with the same
   * key, and an agent that heard its job by gossip only has the old one.
   * When they all fail, the DHT says where the peer is now, and those are
   * dialed once.
   */
  const dialJob = async (peer: PeerId, signal: AbortSignal): Promise<Stream> => {
    try {
      return await node.dialProtocol(peer, JOB_PROTOCOL, { signal })
    } catch (err) {
      if (signal.aborted || node.getConnections(peer).length > 0) throw err
      const found = await node.peerRouting.findPeer(peer, { signal, useCache: false }).catch(() => undefined)
      if (found === undefined || found.multiaddrs.length === 0) throw err
      log('debug', `known addresses of ${peer.toString()} failed; dialing the ones the DHT gave`)
      await node.peerStore.patch(peer, { multiaddrs: found.multiaddrs })
      return await node.dialProtocol(peer, JOB_PROTOCOL, { signal })
    }
  }

  return {
    peerId: node.peerId.toString(),
    async start () {
      if (started) return
      await node.handle(JOB_PROTOCOL, handle, { maxInboundStreams: init.maxInboundStreams ?? JOB_MAX_INBOUND_STREAMS })
      node.services.pubsub.addEventListener('message', onMessage)
      started = true
    },
    async stop () {
      if (!started) return
      started = false
      node.services.pubsub.removeEventListener('message', onMessage)
      for (const t of topics) node.services.pubsub.unsubscribe(t)
      topics.clear()
      await node.unhandle(JOB_PROTOCOL).catch(() => {})
    },
    async publish (topic, frame) {
      if (frame.byteLength > MAX_FRAME_BYTES) throw new RangeError(`job frame of ${frame.byteLength} bytes is over ${MAX_FRAME_BYTES}`)
      await waitForSubscribers(topic)
      // Not subscribed itself, this node flood-publishes to every subscriber it is connected to (gossipsub's
      // floodPublish); they forward it through their meshes, which reach only agents subscribed to the topic.
      const { recipients } = await node.services.pubsub.publish(topic, frame)
      return { recipients: recipients.map(p => p.toString()) }
    },
    async findAgents (search) {
      await findAgents(node, {
        platform: search.platform,
        candidateCapabilities: search.capabilities,
        signal: search.signal,
        timeoutMs: JOB_SEARCH_TIMEOUT_MS,
        onRecord: record => {
          if (record.peerId === node.peerId.toString()) return
          search.onAgent({ peer: record.peerId, platforms: [...record.platforms.map(p => p.platform), ...record.emulated] })
        }
      })
    },
    subscribe (topic) {
      topics.add(topic)
      node.services.pubsub.subscribe(topic)
    },
    unsubscribe (topic) {
      topics.delete(topic)
      node.services.pubsub.unsubscribe(topic)
    },
    async send (peer, frames) {
      const signal = AbortSignal.timeout(timeoutMs)
      const stream = await dialJob(peerIdFromString(peer), signal)
      try {
        for (const f of frames) {
          if (f.byteLength > MAX_FRAME_BYTES) throw new RangeError(`job frame of ${f.byteLength} bytes is over ${MAX_FRAME_BYTES}`)
          await sendAll(stream, lp.encode.single(f).subarray(), signal)
        }
        await stream.close({ signal })
      } catch (err) {
        stream.abort(err as Error)
        throw err
      }
    },
    onFrame (handler) {
      handlers.add(handler)
      return () => { handlers.delete(handler) }
    }
  }
}
