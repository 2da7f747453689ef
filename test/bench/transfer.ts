/**
 * Transfer benchmark: a 256 MiB blob fetched over loopback by `fetchBlob`
 * (verified, written to the store, fsynced) from one provider and from three,
 * each provider a separate process; beside it, in the same run, the
 * reference: the same bytes copied over a plain TCP socket from a child
 * process, and the raw throughput of one libp2p connection (tcp + noise +
 * yamux, one stream, no blob protocol, no disk). Prints MB/s (10^6 bytes)
 * and each figure's ratio to the TCP reference.
 *
 * Run: npm run bench -- transfer      (KILN_BENCH_MIB=64 for a quicker run)
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdtemp, open, rm } from 'node:fs/promises'
import { createServer, connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { multiaddr } from '@multiformats/multiaddr'
import { createFsContentStore } from '../../src/content/index.ts'
import type { Digest } from '../../src/content/index.ts'
import { createKilnNode, sendAll } from '../../src/p2p/index.ts'
import { createTransfer } from '../../src/transfer/index.ts'

const MiB = 1024 * 1024
const SIZE = Number(process.env.KILN_BENCH_MIB ?? 256) * MiB
const SINK_PROTOCOL = '/kiln/bench/sink/1.0.0'
const LOOPBACK = ['/ip4/127.0.0.1/tcp/0']


/** Child: serves the file to each TCP connection, prints its port. */
async function tcpServer (file: string): Promise<void> {
  const server = createServer(sock => { createReadStream(file, { highWaterMark: MiB }).pipe(sock) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  console.log(JSON.stringify({ port: (server.address() as AddressInfo).port }))
  process.stdin.resume()
  process.stdin.on('end', () => { server.close(); process.exit(0) })
}

/** Child: a kiln node holding the blob; also sends SIZE raw bytes on the sink protocol. */
async function provider (dir: string, file: string, digest: Digest): Promise<void> {
  const store = await createFsContentStore({ root: dir })
  await store.ingest(createReadStream(file, { highWaterMark: MiB }), { digest, size: SIZE })
  const node = await createKilnNode({ listen: LOOPBACK })
  const transfer = createTransfer({ node, store })
  await transfer.start()
  const block = randomBytes(MiB)
  await node.handle(SINK_PROTOCOL, async (stream) => {
    for (let sent = 0; sent < SIZE; sent += MiB) await sendAll(stream, block)
    await stream.close()
  })
  console.log(JSON.stringify({ addr: node.getMultiaddrs()[0]!.toString(), peer: node.peerId.toString() }))
  process.stdin.resume()
  process.stdin.on('end', () => { void transfer.stop().then(async () => { await node.stop() }).then(() => process.exit(0)) })
}

interface Child { proc: ChildProcess, info: Record<string, string | number> }

async function child (roleArgs: string[]): Promise<Child> {
  const proc = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', import.meta.filename, ...roleArgs], { stdio: ['pipe', 'pipe', 'inherit'] })
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).once('line', resolve)
    proc.once('exit', code => { reject(new Error(`${roleArgs[0]!} exited with ${String(code)}`)) })
  })
  return { proc, info: JSON.parse(line) as Record<string, string | number> }
}

function end (c: Child): void { c.proc.stdin!.end() }

const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000)

async function best (runs: number, fn: () => Promise<number>): Promise<number> {
  let ms = Infinity
  for (let i = 0; i < runs; i++) ms = Math.min(ms, await fn())
  return ms
}

async function main (): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-bench-transfer-'))
  const children: Child[] = []
  try {
    // The blob: random bytes in a file, hashed as written.
    const file = join(dir, 'blob')
    const hash = createHash('sha256')
    const fh = await open(file, 'w')
    for (let at = 0; at < SIZE; at += 16 * MiB) { const b = randomBytes(Math.min(16 * MiB, SIZE - at)); hash.update(b); await fh.write(b) }
    await fh.close()
    const digest = `sha256:${hash.digest('hex')}` as Digest
    console.log(`blob: ${SIZE / MiB} MiB ${digest.slice(0, 19)}...  (best of 2 runs each)`)

    const tcp = await child(['tcp-server', file])
    children.push(tcp)
    const providers = await Promise.all([0, 1, 2].map(async i => await child(['provider', join(dir, `p${i}`), file, digest])))
    children.push(...providers)

    const tcpMs = await best(2, async () => {
      const t0 = performance.now()
      await new Promise<void>((resolve, reject) => {
        let n = 0
        const sock = connect(Number(tcp.info.port), '127.0.0.1')
        sock.on('data', (b: Buffer) => { n += b.byteLength })
        sock.on('end', () => { if (n === SIZE) resolve(); else reject(new Error(`tcp copy got ${n} bytes`)) })
        sock.on('error', reject)
      })
      return performance.now() - t0
    })

    const node = await createKilnNode({ listen: LOOPBACK })
    try {
      for (const p of providers) await node.dial(multiaddr(String(p.info.addr)))
      const peers = providers.map(p => String(p.info.peer))

      const rawMs = await best(2, async () => {
        const t0 = performance.now()
        const stream = await node.dialProtocol(multiaddr(String(providers[0]!.info.addr)), SINK_PROTOCOL)
        let n = 0
        await new Promise<void>((resolve, reject) => {
          stream.addEventListener('message', (evt) => { n += evt.data.byteLength })
          stream.addEventListener('remoteCloseWrite', () => { resolve() })
          stream.addEventListener('close', (evt) => { if (evt.error != null) reject(evt.error); else resolve() })
        })
        await stream.close()
        if (n !== SIZE) throw new Error(`sink sent ${n} bytes`)
        return performance.now() - t0
      })

      let round = 0
      const fetchMs = async (from: string[]): Promise<number> => await best(2, async () => {
        const store = await createFsContentStore({ root: join(dir, `me${round++}`) })
        const transfer = createTransfer({ node, store })
        const t0 = performance.now()
        const res = await transfer.fetch(digest, { providers: from, findProviders: false, askConnected: false })
        const ms = performance.now() - t0
        if (res.size !== SIZE || res.fromPeers.size !== from.length) throw new Error(`fetch used ${res.fromPeers.size} of ${from.length} providers`)
        await rm(join(dir, `me${round - 1}`), { recursive: true, force: true })
        return ms
      })
      const oneMs = await fetchMs([peers[0]!])
      const threeMs = await fetchMs(peers)

      const ref = mbps(SIZE, tcpMs)
      const row = (label: string, ms: number): void => {
        const r = mbps(SIZE, ms)
        console.log(`${label.padEnd(44)} ${r.toFixed(0).padStart(6)} MB/s  ${(ms / 1000).toFixed(2).padStart(6)} s  ${(r / ref).toFixed(2)}x TCP`)
      }
      row('reference: plain TCP copy (child process)', tcpMs)
      row('libp2p: one connection, one stream, raw', rawMs)
      row('kiln fetch: one provider (verify + fsync)', oneMs)
      row('kiln fetch: three providers (verify + fsync)', threeMs)
    } finally {
      await node.stop()
    }
  } finally {
    for (const c of children) end(c)
    await Promise.all(children.map(async c => { await new Promise(resolve => { if (c.proc.exitCode !== null) resolve(undefined); else c.proc.once('exit', resolve) }) }))
    await rm(dir, { recursive: true, force: true })
  }
}

const [role, ...args] = process.argv.slice(2)
if (role === 'tcp-server') await tcpServer(args[0]!)
else if (role === 'provider') await provider(args[0]!, args[1]!, args[2] as Digest)
else await main()
