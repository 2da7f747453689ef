/** The real system behind `SystemAccess`: /proc, statfs, TCP, HTTP, host tools and the sandbox probe. */
import { execFile } from 'node:child_process'
import { readdir, readFile, statfs } from 'node:fs/promises'
import { connect } from 'node:net'
import { ownershipLedgerRefusal, probeSandboxes } from '../builder/sandbox/index.ts'
import type { KilnConfig } from '../config/index.ts'
import { modeOnDisk } from './data-dir.ts'
import { readPolicyFile } from '../trust/index.ts'
import type { SystemAccess } from './types.ts'

async function tcpConnect (host: string, port: number, timeoutMs: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const socket = connect({ host, port })
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer within ${timeoutMs} ms`)) }, timeoutMs)
    socket.once('connect', () => { clearTimeout(timer); socket.destroy(); resolve() })
    socket.once('error', err => { clearTimeout(timer); socket.destroy(); reject(err) })
  })
}

/** Dials with a throwaway node (no listener, no mdns) built from the node section, so pnet applies as it will to the agent. */
async function libp2pDial (config: KilnConfig, addr: string, timeoutMs: number): Promise<{ peerId: string, protocols: string[] }> {
  const [{ createKilnNode }, { multiaddr }, { readFile }] = await Promise.all([import('../p2p/index.ts'), import('@multiformats/multiaddr'), import('node:fs/promises')])
  const signal = AbortSignal.timeout(timeoutMs)
  const node = await createKilnNode({ listen: [], mdns: false, ...(config.node.pnet !== undefined ? { psk: await readFile(config.node.pnet) } : {}) })
  try {
    const identified = new Promise<string[]>((resolve, reject) => {
      node.addEventListener('peer:identify', (evt) => { resolve(evt.detail.protocols) })
      signal.addEventListener('abort', () => { reject(new Error(`no identify answer within ${timeoutMs} ms`)) }, { once: true })
    })
    identified.catch(() => {})
    const connection = await node.dial(multiaddr(addr), { signal })
    const protocols = await identified
    return { peerId: connection.remotePeer.toString(), protocols }
  } finally {
    await node.stop()
  }
}

export function createSystemAccess (config: KilnConfig): SystemAccess {
  return {
    readText: async (path) => await readFile(path, 'utf8').catch(() => undefined),
    readdir: async (path) => await readdir(path).catch(() => undefined),
    statfs: async (path) => {
      const s = await statfs(path)
      return { type: s.type, bsize: s.bsize, blocks: s.blocks, bavail: s.bavail, files: s.files, ffree: s.ffree }
    },
    mode: modeOnDisk,
    connect: tcpConnect,
    dialPeer: async (addr, timeoutMs) => await libp2pDial(config, addr, timeoutMs),
    httpDate: async (url, timeoutMs) => {
      const res = await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' })
      const date = res.headers.get('date')
      return date === null ? undefined : new Date(date)
    },
    toolVersion: async (name) => await new Promise(resolve => {
      execFile(name, ['--version'], { timeout: 5000 }, (err, stdout) => { resolve(err === null ? stdout.split('\n', 1)[0]?.trim() : undefined) })
    }),
    probeSandboxes: async () => await probeSandboxes(),
    ownershipLedger: ownershipLedgerRefusal,
    trustCounts: async () => {
      const file = await readPolicyFile(config.dataDir)
      return { roots: file.roots.length + config.trust.roots.length, peers: file.peers.length + config.trust.peers.length }
    },
    now: () => Date.now(),
    arch: process.arch
  }
}
