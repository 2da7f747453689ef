/**
 * startGatewayNode (src/node/gateway.ts) in-process on a temp data dir: the
 * settings it refuses before serving (NodeSettingError, with the hint the
 * CLI prints), ListenError on an address in use, and a gateway that serves
 * the store until closed. The network side (pull-through, tag records) is
 * covered end to end by test/e2e/gateway.
 */
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../../../src/config/index.ts'
import { openLocalStore } from '../../../src/content/index.ts'
import type { LocalStore } from '../../../src/content/index.ts'
import { ListenError, NodeSettingError, startGatewayNode } from '../../../src/node/index.ts'
import type { GatewayNodeInit } from '../../../src/node/index.ts'
import { pino } from 'pino'
import { tempDirs } from '../../helpers/temp.ts'

const dirs = tempDirs('kiln-node-gw-')
const closers: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c()
  dirs.cleanup()
})

async function setup (): Promise<Omit<GatewayNodeInit, 'host' | 'port'> & { store: LocalStore }> {
  const dataDir = dirs.make()
  const config = await loadConfig({ env: {}, overrides: { dataDir } })
  const store = await openLocalStore(dataDir)
  closers.push(() => { store.close() })
  return { config, store, log: pino({ level: 'silent' }) }
}

describe('startGatewayNode', () => {
  it('refuses settings that do not go together or would expose passwords, each with its own message', async () => {
    const base = await setup()
    await expect(startGatewayNode({ ...base, host: '127.0.0.1', port: 0, tlsCert: '/x/cert.pem' }))
      .rejects.toMatchObject({ name: NodeSettingError.name, message: '--tls-cert and --tls-key go together' })
    await expect(startGatewayNode({ ...base, host: '10.1.2.3', port: 0 }))
      .rejects.toMatchObject({ name: NodeSettingError.name, message: expect.stringMatching(/refusing plain HTTP on 10\.1\.2\.3/), hint: expect.stringMatching(/--insecure-listen/) })
    await expect(startGatewayNode({ ...base, host: '10.1.2.3', port: 0, insecureListen: true, anonymousPush: true }))
      .rejects.toMatchObject({ name: NodeSettingError.name, message: expect.stringMatching(/--anonymous-push is only allowed on a loopback address/) })
    await expect(startGatewayNode({ ...base, host: '127.0.0.1', port: 0, upstreams: ['=nothing'] }))
      .rejects.toMatchObject({ name: NodeSettingError.name, message: expect.stringMatching(/^--upstream: /), hint: expect.stringMatching(/docker\.io/) })
  })

  it('serves the store on a free port until closed, and says ListenError for a port in use', async () => {
    const base = await setup()
    const gw = await startGatewayNode({ ...base, host: '127.0.0.1', port: 0, anonymousPush: true })
    closers.push(gw.close)
    expect(gw).toMatchObject({ tls: false, users: 0, anonymous: 'push' })
    const res = await fetch(`${gw.url}/v2/`, { signal: AbortSignal.timeout(10_000) })
    expect(res.status).toBe(200)

    const taken = createServer()
    await new Promise<void>(resolve => { taken.listen(0, '127.0.0.1', resolve) })
    closers.push(async () => { await new Promise(resolve => { taken.close(resolve) }) })
    const port = (taken.address() as AddressInfo).port
    await expect(startGatewayNode({ ...base, host: '127.0.0.1', port })).rejects.toMatchObject({ name: ListenError.name, message: expect.stringContaining(`127.0.0.1:${port}`) })

    await gw.close()
    await expect(fetch(`${gw.url}/v2/`, { signal: AbortSignal.timeout(10_000) })).rejects.toThrow()
  })
})
