/**
 * The capability record of a bench agent (test/bench/_discovery-host.ts,
 * test/bench/_farm-host.ts): one native platform, the given capabilities,
 * fixed limits and an empty queue.
 */
import type { CapabilityDescription } from '../../src/p2p/index.ts'

export function describeAgent (spec: { platform: string, capabilities: string[] }): CapabilityDescription {
  return {
    platforms: [{ platform: spec.platform, features: [] }],
    emulated: [],
    capabilities: spec.capabilities,
    details: {},
    limits: { cpus: 4, memoryBytes: 8 << 30, diskBytes: 100 << 30 },
    queue: { queued: 0, running: 0 }
  }
}
