/**
 * Turning command-line and config options into a KilnNodeInit, shared by
 * every command that starts a node (agent, peers, pull, ...). Flags win over
 * the config file.
 */
import { readFile } from 'node:fs/promises'
import type { PrivateKey } from '@libp2p/interface'
import type { KilnNodeInit } from './node.ts'

export interface NodeConfig {
  listen: string[]
  bootstrap: string[]
  mdns: boolean
  relay: boolean
  relayClient: boolean
  relayVia: string[]
  pnet?: string
  tls?: boolean
  maxConnections?: number
  /** Seconds. */
  pingInterval?: number
}

export interface NodeFlags {
  /** Comma-separated multiaddrs. */
  listen?: string
  /** Comma-separated multiaddrs. */
  bootstrap?: string
  /** commander's `--no-mdns` sets this false. */
  mdns?: boolean
  relay?: boolean
  /** Comma-separated relay multiaddrs (with /p2p/<id>) to be reached through. */
  relayVia?: string
}

export function splitList (value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined
  return value.split(',').map(s => s.trim()).filter(s => s !== '')
}

/** `ephemeral`: a client command (peers, pull) listens on a free loopback-or-any port, not the agent's. */
export async function nodeInitFromOptions (config: NodeConfig, flags: NodeFlags, privateKey: PrivateKey, ephemeral: boolean): Promise<KilnNodeInit> {
  const listen = splitList(flags.listen) ?? (ephemeral ? ['/ip4/0.0.0.0/tcp/0'] : config.listen)
  return {
    privateKey,
    listen,
    bootstrap: splitList(flags.bootstrap) ?? config.bootstrap,
    mdns: flags.mdns ?? config.mdns,
    relay: flags.relay ?? config.relay,
    relayClient: config.relayClient,
    relayVia: splitList(flags.relayVia) ?? config.relayVia,
    tls: config.tls,
    ...(config.maxConnections !== undefined ? { maxConnections: config.maxConnections } : {}),
    ...(config.pingInterval !== undefined ? { pingInterval: config.pingInterval * 1000 } : {}),
    ...(config.pnet !== undefined ? { psk: await readFile(config.pnet) } : {})
  }
}

/** Waits until the node has at least one connection, or the timeout passes. */
export async function waitForPeers (node: { getPeers: () => unknown[], addEventListener: (type: 'peer:connect', fn: () => void) => void, removeEventListener: (type: 'peer:connect', fn: () => void) => void }, timeoutMs: number): Promise<boolean> {
  if (node.getPeers().length > 0) return true
  return await new Promise<boolean>(resolve => {
    const onConnect = (): void => { clearTimeout(timer); node.removeEventListener('peer:connect', onConnect); resolve(true) }
    const timer = setTimeout(() => { node.removeEventListener('peer:connect', onConnect); resolve(false) }, timeoutMs)
    node.addEventListener('peer:connect', onConnect)
  })
}
