/**
 * What the job tests over the in-memory network (createMemoryJobNetwork:
 * jobs, secrets, reach) share: blobs kept in a map, the one-layer image a
 * fake builder returns, and the stops run after each test.
 */
import { createHash } from 'node:crypto'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach } from 'vitest'
import type { BuildOutput } from '../../../agent/jobs/index.ts'
import type { Ed25519PrivateKey } from '../../../src/trust/index.ts'

type Digest = `sha256:${string}`

export const sha = (b: Uint8Array | string): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}`
export const id = (k: Ed25519PrivateKey): string => peerIdFromPrivateKey(k).toString()

export interface MemoryBlobs {
  readonly blobs: Map<string, Uint8Array>
  /** Keeps the bytes (a string as UTF-8) and returns their descriptor. */
  put: (bytes: Uint8Array | string) => { digest: Digest, size: number }
  /** A one-layer image for `platform` whose layer holds `layer`, kept here, as a builder returns it. */
  image: (layer: string, platform: string) => BuildOutput
  /** A requester's blob source: the bytes kept, checked against digest and size; throws for anything else. */
  fetch: (b: { digest: string, size: number }) => Promise<Uint8Array>
}

export function memoryBlobs (): MemoryBlobs {
  const blobs = new Map<string, Uint8Array>()
  const put = (bytes: Uint8Array | string): { digest: Digest, size: number } => {
    const b = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes
    blobs.set(sha(b), b)
    return { digest: sha(b), size: b.byteLength }
  }
  return {
    blobs,
    put,
    image (layerText, platform) {
      const layer = put(layerText)
      const config = put(`config ${platform}`)
      const manifest = put(JSON.stringify({ schemaVersion: 2, config, layers: [layer] }))
      return { ...manifest, mediaType: 'application/vnd.oci.image.manifest.v1+json', blobs: [config, layer], baseDigests: [], sandbox: 'fake' }
    },
    async fetch (b) {
      const bytes = blobs.get(b.digest)
      if (bytes === undefined || sha(bytes) !== b.digest || bytes.byteLength !== b.size) throw new Error(`blob ${b.digest} unavailable`)
      return bytes
    }
  }
}

/** A list of stops (agents, requesters) that an afterEach of the calling file or describe block runs in order and empties. */
export function stopsAfterEach (): Array<() => Promise<void> | void> {
  const stops: Array<() => Promise<void> | void> = []
  afterEach(async () => { for (const s of stops.splice(0)) await s() })
  return stops
}
