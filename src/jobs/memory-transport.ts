/**
 * An in-process JobTransport network for tests and single-process demos:
 * delivery is asynchronous (like a real network), per-sender ordered, and a
 * peer can be cut off to simulate a crash.
 */
import type { FrameHandler, JobTransport } from './transport.ts'

export interface MemoryJobNetwork {
  /** A transport for a peer id; frames to it are delivered while it is connected. */
  connect: (peerId: string) => JobTransport
  /** Stops all delivery to and from the peer, as if it had died. */
  disconnect: (peerId: string) => void
  /** Frames delivered so far, for assertions. */
  delivered: () => number
}

export function createMemoryJobNetwork (): MemoryJobNetwork {
  const handlers = new Map<string, Set<FrameHandler>>()
  const topics = new Map<string, Set<string>>()
  const dead = new Set<string>()
  let count = 0

  const deliver = (to: string, from: string, frame: Uint8Array, via: 'gossip' | 'stream'): void => {
    setImmediate(() => {
      if (dead.has(to) || dead.has(from)) return
      count++
      for (const h of handlers.get(to) ?? []) h(frame, from, via)
    })
  }

  return {
    connect (peerId) {
      dead.delete(peerId)
      const mine = handlers.get(peerId) ?? new Set<FrameHandler>()
      handlers.set(peerId, mine)
      return {
        peerId,
        publish: async (topic, frame) => {
          if (dead.has(peerId)) throw new Error(`${peerId} is disconnected`)
          const recipients = [...topics.get(topic) ?? []].filter(p => p !== peerId)
          for (const p of recipients) deliver(p, peerId, frame, 'gossip')
          return { recipients }
        },
        subscribe: (topic) => {
          const s = topics.get(topic) ?? new Set<string>()
          s.add(peerId)
          topics.set(topic, s)
        },
        unsubscribe: (topic) => { topics.get(topic)?.delete(peerId) },
        send: async (peer, frames) => {
          if (dead.has(peerId)) throw new Error(`${peerId} is disconnected`)
          if (dead.has(peer) || !handlers.has(peer)) throw new Error(`peer ${peer} is unreachable`)
          for (const f of frames) deliver(peer, peerId, f, 'stream')
        },
        onFrame: (handler) => {
          mine.add(handler)
          return () => { mine.delete(handler) }
        }
      }
    },
    disconnect (peerId) {
      dead.add(peerId)
      for (const s of topics.values()) s.delete(peerId)
    },
    delivered: () => count
  }
}
