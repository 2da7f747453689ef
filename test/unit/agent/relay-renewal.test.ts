/**
 * agent/relay-renewal.ts: what an agent does on its relayVia service's
 * events. The service is a real event emitter fed by hand; the advertiser
 * and the transfer record their calls, and the first announcement of the
 * store can be held open to renew again meanwhile (a relay that flaps).
 */
import { pino } from 'pino'
import { Writable } from 'node:stream'
import { TypedEventEmitter } from 'main-event'
import { describe, expect, it } from 'vitest'
import { followRelayRenewals } from '../../../agent/relay-renewal.ts'
import type { CapabilityAdvertiser, KilnNode, RelayVia, RelayViaEvents } from '../../../src/p2p/index.ts'
import type { Transfer } from '../../../src/transfer/index.ts'

const RELAY = '/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWRelay'

function setup (holdFirst = false): {
  relays: RelayVia
  calls: string[]
  logs: () => Array<{ msg: string, relay?: string }>
  release: () => void
  stop: () => Promise<void>
  /** Resolves once `n` announcements of the store have ended. */
  announced: (n: number) => Promise<void>
} {
  const relays = Object.assign(new TypedEventEmitter<RelayViaEvents>(), { renewing: () => [] }) as RelayVia
  const node = { services: { relayVia: relays }, getMultiaddrs: () => [] } as unknown as KilnNode
  const calls: string[] = []
  let hold: (() => void) | undefined
  let ended = 0
  const waiters: Array<{ n: number, resolve: () => void }> = []
  const advertiser = { publish: async (o?: { reprovide?: boolean }) => { calls.push(`publish reprovide=${String(o?.reprovide)}`); return {} } } as unknown as CapabilityAdvertiser
  const transfer = {
    provideAll: async () => {
      calls.push('provideAll')
      // The first announcement is held until released, so that renewals arrive while it runs.
      if (holdFirst && calls.filter(c => c === 'provideAll').length === 1) await new Promise<void>(resolve => { hold = resolve })
      ended++
      for (const w of waiters.filter(w => w.n <= ended)) w.resolve()
      return 3
    }
  } as unknown as Transfer
  const lines: string[] = []
  const log = pino({ level: 'info' }, new Writable({ write (chunk: Buffer, _enc, done) { lines.push(chunk.toString()); done() } }))
  const stop = followRelayRenewals({ node, advertiser, transfer, log })
  return {
    relays,
    calls,
    logs: () => lines.map(l => JSON.parse(l) as { msg: string, relay?: string }),
    release: () => { hold?.() },
    stop,
    announced: async (n) => { await new Promise<void>(resolve => { if (ended >= n) resolve(); else waiters.push({ n, resolve }) }) }
  }
}

describe('followRelayRenewals', () => {
  it('logs the loss and the renewal, then publishes the capability record with every key and provides the store again', async () => {
    const s = setup()
    s.relays.safeDispatchEvent('relay:lost', { detail: { relay: RELAY } })
    s.relays.safeDispatchEvent('relay:retry', { detail: { relay: RELAY, attempt: 1, error: new Error('connection refused'), nextInMs: 1000 } })
    expect(s.calls).toEqual([])
    s.relays.safeDispatchEvent('relay:renewed', { detail: { relay: RELAY, attempts: 2, addresses: [] } })
    await s.announced(1)
    expect(s.calls).toEqual(['publish reprovide=true', 'provideAll'])
    await s.stop()
    const msgs = s.logs().map(l => l.msg)
    expect(msgs).toEqual(['relay reservation lost, re-reserving', 'relay reservation not made yet, trying again', 'relay reservation renewed', 'store announced again'])
    expect(s.logs()[0]?.relay).toBe(RELAY)
  })

  it('renewals during an announcement make one more round, not parallel ones; after stop, events do nothing', async () => {
    const s = setup(true)
    s.relays.safeDispatchEvent('relay:renewed', { detail: { relay: RELAY, attempts: 1, addresses: [] } })
    await new Promise(resolve => setImmediate(resolve))
    // The first round waits in provideAll; two renewals arrive meanwhile.
    s.relays.safeDispatchEvent('relay:renewed', { detail: { relay: RELAY, attempts: 1, addresses: [] } })
    s.relays.safeDispatchEvent('relay:renewed', { detail: { relay: RELAY, attempts: 1, addresses: [] } })
    expect(s.calls).toEqual(['publish reprovide=true', 'provideAll'])
    s.release()
    await s.announced(2)
    expect(s.calls).toEqual(['publish reprovide=true', 'provideAll', 'publish reprovide=true', 'provideAll'])
    await s.stop()
    s.relays.safeDispatchEvent('relay:renewed', { detail: { relay: RELAY, attempts: 1, addresses: [] } })
    await new Promise(resolve => setImmediate(resolve))
    expect(s.calls).toHaveLength(4)
  })
})
