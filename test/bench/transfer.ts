/**
 * Transfer benchmark (issue 5), everything on loopback, in one run:
 *
 * (a) a single-layer image (1 GiB layer) pulled with `kiln pull NAME@DIGEST`
 *     as a process, from one and from three `kiln agent` processes holding
 *     it, verified and written to a fresh store; against `skopeo copy` of the
 *     same image from Debian's docker-registry (filesystem storage in a temp
 *     dir, pushed there with skopeo) to an OCI layout, and against
 *     `dd bs=4M conv=fsync` of the layer's bytes (the disk's own bound).
 * (b) the raw stream: the layer as a 1 GiB blob served from memory by a
 *     blob server in a child process and discarded by the client, read with
 *     the transfer code's ranges and sessions the way a fetch reads one
 *     provider: over direct channels (TCP with TLS 1.3 from the first byte,
 *     libp2p certificates, no muxer: protocols/transport.md §5), one per
 *     session, and over just one; against `curl` GET of the same blob from
 *     the docker-registry to /dev/null. Extra lines: the blob protocol as
 *     yamux streams on one TCP+TLS connection (what a peer without direct
 *     channels gets), the same over tcp + noise + yamux (pnet nodes, stock
 *     libp2p peers), a plain TCP copy from a child process, and one raw
 *     libp2p stream without the blob protocol.
 *
 * Medians of KILN_BENCH_RUNS runs (default 3), alternating. Prints seconds,
 * MB/s (10^6 bytes) and the ratios the issue asks for.
 *
 *   npm run bench -- transfer     (KILN_BENCH_MIB=1024, KILN_BENCH_RUNS=3, KILN_BENCH_ONLY=a|b)
 *
 * KILN_BENCH_COMPARE=DIR (another checkout of kiln, e.g. a `git worktree`
 * of main with node_modules linked) adds to (a) a pull from one agent with
 * that checkout's kiln on both ends, alternated with the others: a
 * before/after in one run.
 */
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createCipheriv, createHash } from 'node:crypto'
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { multiaddr } from '@multiformats/multiaddr'
import type { BlobReader, Digest } from '../../src/content/index.ts'
import { createKilnNode, sendAll } from '../../src/p2p/index.ts'
import { createBlobServer, readBlobRanges } from '../../src/transfer/index.ts'
import { DEFAULT_PER_PEER_CONCURRENCY } from '../../src/transfer/constants.ts'
import { tuneHeapForBulkData } from '../../src/util/heap.ts'
import { childrenCpuSeconds, cpuSeconds } from './_cpu.ts'

const MiB = 1024 * 1024
const SIZE = Number(process.env.KILN_BENCH_MIB ?? 1024) * MiB
const RUNS = Number(process.env.KILN_BENCH_RUNS ?? 3)
/** `a` or `b` runs only that part (the set-up is the same). */
const ONLY = process.env.KILN_BENCH_ONLY
const SINK_PROTOCOL = '/kiln/bench/sink/1.0.0'
const LOOPBACK = ['/ip4/127.0.0.1/tcp/0']
const repo = join(import.meta.dirname, '..', '..')
const kilnBin = join(repo, 'src', 'cli', 'kiln.mjs')
/** Another checkout whose kiln is timed beside this one in (a). */
const COMPARE = process.env.KILN_BENCH_COMPARE

/**
 * The layer's bytes, the same in every process: a 4 MiB pseudo-random block
 * (AES-CTR of zeros under a fixed key), each copy stamped with its index.
 */
function layerBytes (): Buffer {
  const out = Buffer.allocUnsafe(SIZE)
  const block = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16)).update(Buffer.alloc(4 * MiB))
  for (let at = 0, i = 0; at < SIZE; at += block.length, i++) {
    block.writeUInt32LE(i, 0)
    block.copy(out, at, 0, Math.min(block.length, SIZE - at))
  }
  return out
}

const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`

// ---------------------------------------------------------------- children

/** Child: serves the layer from memory on the blob protocol and raw on the sink protocol; prints its address. */
async function memServer (): Promise<void> {
  const bytes = layerBytes()
  const digest = sha256(bytes) as Digest
  const store: BlobReader = {
    info: async (d) => { if (d !== digest) throw Object.assign(new Error('not found'), { name: 'NotFoundError' }); return { digest, size: SIZE } },
    has: async (d) => d === digest,
    read: (d, o = {}) => (async function * () {
      const start = o.offset ?? 0
      yield bytes.subarray(start, start + (o.length ?? SIZE - start))
    })(),
    readBytes: async () => { throw new Error('not for a bench') },
    path: async () => { throw new Error('not for a bench') }
  }
  const node = await createKilnNode({ listen: LOOPBACK })
  const server = createBlobServer({ node, store })
  await server.start()
  await node.handle(SINK_PROTOCOL, async (stream) => {
    for (let sent = 0; sent < SIZE; sent += MiB) await sendAll(stream, bytes.subarray(sent, sent + MiB))
    await stream.close()
  })
  const addrs = node.getMultiaddrs().map(String)
  console.log(JSON.stringify({ addr: addrs.find(a => a.includes('/tls/')), noiseAddr: addrs.find(a => !a.includes('/tls/')), digest }))
  process.stdin.resume()
  process.stdin.on('end', () => { void server.stop().then(async () => { await node.stop() }).then(() => process.exit(0)) })
}

/** Child: sends the layer from memory to each TCP connection; prints its port. */
async function tcpServer (): Promise<void> {
  const bytes = layerBytes()
  const server = createServer(sock => {
    let at = 0
    const more = (): void => {
      while (at < SIZE) {
        const ok = sock.write(bytes.subarray(at, at + MiB))
        at += MiB
        if (!ok) { sock.once('drain', more); return }
      }
      sock.end()
    }
    more()
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  console.log(JSON.stringify({ port: (server.address() as AddressInfo).port }))
  process.stdin.resume()
  process.stdin.on('end', () => { server.close(); process.exit(0) })
}

// ---------------------------------------------------------------- helpers

const children: ChildProcess[] = []

async function benchChild (role: string): Promise<{ proc: ChildProcess, info: Record<string, string | number> }> {
  const proc = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', import.meta.filename, role], { stdio: ['pipe', 'pipe', 'inherit'] })
  children.push(proc)
  const [line] = await firstLines(proc, [() => true])
  return { proc, info: JSON.parse(line!) as Record<string, string | number> }
}

/** The first line of the child's stdout that each matcher accepts, in one read (lines are not read twice). */
async function firstLines (proc: ChildProcess, matchers: Array<(line: string) => boolean>): Promise<string[]> {
  return await new Promise<string[]>((resolve, reject) => {
    const found: Array<string | undefined> = matchers.map(() => undefined)
    const rl = createInterface({ input: proc.stdout! })
    rl.on('line', (line) => {
      matchers.forEach((m, i) => { if (found[i] === undefined && m(line)) found[i] = line })
      if (found.every(l => l !== undefined)) { rl.removeAllListeners('line'); resolve(found as string[]) }
    })
    proc.once('exit', code => { reject(new Error(`child exited with ${String(code)}`)) })
  })
}

function have (cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
}

function run (cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): void {
  // stderr kept only for a failure (kiln pull draws its progress bars there).
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${String(r.status ?? r.signal)}): ${r.stderr.slice(-2000)}`)
}


/**
 * Runs a command through sh and returns the CPU seconds it used (user + system, with its threads
 * and children): the shell's own /proc stat counts them once it has waited for the command. CPU
 * time, unlike wall time, barely changes with the load of other work on the machine.
 */
function runCounted (cmd: string, args: string[], env: NodeJS.ProcessEnv, statFile: string): number {
  run('sh', ['-c', 'f=$1; shift; "$@"; s=$?; cat /proc/$$/stat > "$f"; exit $s', 'sh', statFile, cmd, ...args], env)
  const seconds = childrenCpuSeconds(statFile)
  rmSync(statFile, { force: true })
  return seconds
}

/** Seconds one run of fn takes. */
function timed (fn: () => void): number {
  const t0 = performance.now()
  fn()
  return (performance.now() - t0) / 1000
}

async function timedAsync (fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now()
  await fn()
  return (performance.now() - t0) / 1000
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => { const { port } = s.address() as AddressInfo; s.close(() => { resolve(port) }) })
  })
}

async function waitUp (url: string): Promise<void> {
  const deadline = Date.now() + 30_000
  for (;;) {
    try { const r = await fetch(url); await r.body?.cancel(); return } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`${url} did not come up`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
const mbps = (s: number): string => (SIZE / s / 1e6).toFixed(0).padStart(5)

function row (label: string, xs: number[], ref?: { label: string, s: number }): void {
  const s = median(xs)
  const ratio = ref !== undefined ? `  ${(ref.s / s).toFixed(2)}x ${ref.label}` : ''
  console.log(`  ${label.padEnd(40)} ${s.toFixed(2).padStart(6)} s ${mbps(s)} MB/s${ratio}   [${xs.map(x => x.toFixed(2)).join(', ')}]`)
}

/** Writes the image as an OCI layout: oci-layout, index.json (tag v1), blobs. */
function writeLayout (dir: string, layer: Buffer): { manifest: string, layer: string, layerPath: string } {
  const blobs = join(dir, 'blobs', 'sha256')
  mkdirSync(blobs, { recursive: true })
  const put = (bytes: Uint8Array): string => {
    const d = sha256(bytes)
    const fd = openSync(join(blobs, d.slice(7)), 'w')
    for (let at = 0; at < bytes.byteLength; at += 16 * MiB) writeSync(fd, bytes, at, Math.min(16 * MiB, bytes.byteLength - at))
    closeSync(fd)
    return d
  }
  const layerDigest = put(layer)
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layerDigest] }, config: {} }))
  const configDigest = put(config)
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.byteLength },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.byteLength }]
  }))
  const manifestDigest = put(manifest)
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  writeFileSync(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: manifest.byteLength, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }]
  }))
  return { manifest: manifestDigest, layer: layerDigest, layerPath: join(blobs, layerDigest.slice(7)) }
}

// ---------------------------------------------------------------- (b) clients

/**
 * The blob read from the memory server in ranges by the transfer code and discarded: over direct
 * channels (`streams` of them, default the fetcher's per-provider sessions), or with `direct: false`
 * as yamux streams on the one libp2p connection dialed at addr.
 */
async function blobStreamRun (addr: string, digest: Digest, options: { direct: boolean, streams?: number }): Promise<number> {
  // A client for the Noise address has no TLS transport, as a pnet node: it could otherwise move the ranges to TLS.
  const node = await createKilnNode({ listen: LOOPBACK, tls: addr.includes('/tls/') })
  try {
    const conn = await node.dial(multiaddr(addr))
    if ((conn.encryption === 'native') !== addr.includes('/tls/')) throw new Error(`dialed ${addr} but the connection is ${conn.remoteAddr.toString()} (${conn.encryption ?? 'unencrypted'})`)
    const dialed = node.services.direct.stats().dialed
    const streams = options.streams ?? DEFAULT_PER_PEER_CONCURRENCY
    const s = await timedAsync(async () => {
      let n = 0
      await readBlobRanges(node, conn.remotePeer, digest, { offset: 0, length: SIZE }, (_offset, bytes) => { n += bytes.byteLength }, { signal: AbortSignal.timeout(120_000), ...options, streams })
      if (n !== SIZE) throw new Error(`blob protocol delivered ${n} bytes`)
    })
    if (node.getConnections(conn.remotePeer).length !== 1) throw new Error('more than one libp2p connection used')
    const channels = node.services.direct.stats().dialed - dialed
    if (channels !== (options.direct ? streams : 0)) throw new Error(`${channels} direct channels used, expected ${options.direct ? streams : 0}`)
    return s
  } finally {
    await node.stop()
  }
}

async function rawStreamRun (addr: string): Promise<number> {
  const node = await createKilnNode({ listen: LOOPBACK })
  try {
    await node.dial(multiaddr(addr))
    return await timedAsync(async () => {
      const stream = await node.dialProtocol(multiaddr(addr), SINK_PROTOCOL)
      let n = 0
      await new Promise<void>((resolve, reject) => {
        stream.addEventListener('message', (evt) => { n += evt.data.byteLength })
        stream.addEventListener('remoteCloseWrite', () => { resolve() })
        stream.addEventListener('close', (evt) => { if (evt.error != null) reject(evt.error); else resolve() })
      })
      await stream.close()
      if (n !== SIZE) throw new Error(`sink sent ${n} bytes`)
    })
  } finally {
    await node.stop()
  }
}

async function tcpRun (port: number): Promise<number> {
  return await timedAsync(async () => {
    await new Promise<void>((resolve, reject) => {
      let n = 0
      const sock = connect(port, '127.0.0.1')
      sock.on('data', (b: Buffer) => { n += b.byteLength })
      sock.on('end', () => { if (n === SIZE) resolve(); else reject(new Error(`tcp copy got ${n} bytes`)) })
      sock.on('error', reject)
    })
  })
}

// ---------------------------------------------------------------- main

async function main (): Promise<void> {
  for (const tool of ['skopeo', 'docker-registry', 'curl', 'dd']) {
    if (!have(tool)) { console.log(`transfer bench skipped: needs ${tool} (apt-get install skopeo docker-registry curl)`); return }
  }
  const work = mkdtempSync(join(tmpdir(), 'kiln-bench-transfer-'))
  const env = { ...process.env, HOME: work, KILN_DATA_DIR: undefined }
  try {
    console.log(`${SIZE / MiB} MiB layer, ${RUNS} runs each, medians; load average at start ${loadavg().map(l => l.toFixed(1)).join(' ')}, ${process.version}`)
    const layout = join(work, 'layout')
    const img = writeLayout(layout, layerBytes())

    // docker-registry, filesystem storage in the temp dir, the image pushed with skopeo. Both skopeo
    // copies keep the digests: by default skopeo gzips an uncompressed layer on the way, and then
    // the two sides would not move the same bytes.
    const regPort = await freePort()
    writeFileSync(join(work, 'registry.yml'), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(work, 'registry')}\nhttp:\n  addr: 127.0.0.1:${regPort}\n`)
    const registry = spawn('/usr/bin/docker-registry', ['serve', join(work, 'registry.yml')], { stdio: 'ignore' })
    children.push(registry)
    const reg = `127.0.0.1:${regPort}`
    await waitUp(`http://${reg}/v2/`)
    run('skopeo', ['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${reg}/bench/img:v1`], env)

    // Three agents, each with the image imported into its own store; not connected to each other,
    // so a pull that knows one of them cannot find the others.
    const agents: Array<{ peer: string, addr: string, pid: number | undefined }> = []
    // With KILN_BENCH_COMPARE, a fourth agent runs the other checkout's kiln.
    const compareBin = COMPARE === undefined ? undefined : join(COMPARE, 'src', 'cli', 'kiln.mjs')
    for (let i = 0; i < (compareBin === undefined ? 3 : 4); i++) {
      const dataDir = join(work, `agent${i}`)
      const bin = i === 3 ? compareBin! : kilnBin
      run(process.execPath, [bin, '--data-dir', dataDir, 'image', 'import', `oci:${layout}:v1`, '-t', 'bench/img:v1'], env)
      const proc = spawn(process.execPath, [bin, '--data-dir', dataDir, '--log-level', 'warn', 'agent', '--no-jobs', '--no-mdns', '--listen', LOOPBACK[0]!], { stdio: ['ignore', 'pipe', 'ignore'], env })
      children.push(proc)
      const [peerLine, addrLine] = await firstLines(proc, [l => l.startsWith('peer id: '), l => l.startsWith('listening: ')])
      const peer = peerLine!.slice('peer id: '.length)
      const addr = addrLine!.slice('listening: '.length)
      agents.push({ peer, addr: addr.includes('/p2p/') ? addr : `${addr}/p2p/${peer}`, pid: proc.pid })
    }

    let n = 0
    // Each timed command starts with no dirty pages left by the one before (they would be written
    // back while it runs, on its time): `sync` first, outside the timing.
    const settle = (): void => { run('sync', []) }
    // CPU seconds of each run: the client (the command with its threads and children) and the
    // serving side (docker-registry, or the agents), read from /proc around the run.
    const cpu = { dd: [] as number[], sk: [] as number[], reg: [] as number[], k1: [] as number[], a1: [] as number[], k3: [] as number[], a3: [] as number[], kc: [] as number[], ac: [] as number[] }
    const statFile = join(work, 'cpu.stat')
    const ddRun = (): number => {
      settle()
      const out = join(work, 'dd.out')
      let used = 0
      const s = timed(() => { used = runCounted('dd', [`if=${img.layerPath}`, `of=${out}`, 'bs=4M', 'conv=fsync', 'status=none'], env, statFile) })
      cpu.dd.push(used)
      rmSync(out, { force: true })
      return s
    }
    const skopeoRun = (): number => {
      settle()
      const dest = join(work, 'skopeo-out')
      const served = cpuSeconds(registry.pid)
      let used = 0
      const s = timed(() => { used = runCounted('skopeo', ['copy', '--quiet', '--preserve-digests', '--dest-oci-accept-uncompressed-layers', '--src-tls-verify=false', `docker://${reg}/bench/img:v1`, `oci:${dest}:v1`], env, statFile) })
      cpu.sk.push(used)
      cpu.reg.push(cpuSeconds(registry.pid) - served)
      rmSync(dest, { recursive: true, force: true })
      return s
    }
    const pullRun = (from: typeof agents, bin = kilnBin): number => {
      settle()
      const dataDir = join(work, `puller${n++}`)
      const served = from.reduce((t, a) => t + cpuSeconds(a.pid), 0)
      let used = 0
      const s = timed(() => {
        used = runCounted(process.execPath, [bin, '--data-dir', dataDir, '--log-level', 'warn', 'pull', `bench/img:v1@${img.manifest}`, '--no-mdns',
          '--bootstrap', from.map(a => a.addr).join(','), '--from', from.map(a => a.peer).join(',')],
        // KILN_BENCH_PULL_NODE_OPTIONS="--cpu-prof --cpu-prof-dir=DIR" profiles the pulling processes alone.
        { ...env, NODE_OPTIONS: process.env.KILN_BENCH_PULL_NODE_OPTIONS }, statFile)
      })
      const [client, server] = bin !== kilnBin ? [cpu.kc, cpu.ac] : from.length === 1 ? [cpu.k1, cpu.a1] : [cpu.k3, cpu.a3]
      client.push(used)
      server.push(from.reduce((t, a) => t + cpuSeconds(a.pid), 0) - served)
      if (spawnSync('test', ['-s', join(dataDir, 'store', 'blobs', 'sha256', img.layer.slice(7))]).status !== 0) throw new Error('kiln pull stored no layer')
      rmSync(dataDir, { recursive: true, force: true })
      return s
    }

    if (ONLY !== 'b') {
      // One warm-up of each (page cache, first start-up), then alternate.
      ddRun(); skopeoRun(); pullRun(agents.slice(0, 1))
      for (const list of Object.values(cpu)) list.length = 0
      const dd: number[] = []; const sk: number[] = []; const k1: number[] = []; const k3: number[] = []; const kc: number[] = []
      if (compareBin !== undefined) pullRun(agents.slice(3), compareBin)
      for (const list of Object.values(cpu)) list.length = 0
      for (let i = 0; i < RUNS; i++) {
        dd.push(ddRun())
        sk.push(skopeoRun())
        k1.push(pullRun(agents.slice(0, 1)))
        if (compareBin !== undefined) kc.push(pullRun(agents.slice(3), compareBin))
        k3.push(pullRun(agents.slice(0, 3)))
      }
      console.log(`(a) image pull to disk, verified (ratios: reference time / this time, >= 1 is as fast or faster)  load ${loadavg()[0]!.toFixed(1)}`)
      row('dd bs=4M conv=fsync (the disk)', dd)
      row('skopeo copy from docker-registry', sk, { label: 'dd', s: median(dd) })
      row('kiln pull, one agent', k1, { label: 'skopeo', s: median(sk) })
      console.log(`  ${''.padEnd(40)} ${''.padEnd(21)}  ${(median(dd) / median(k1)).toFixed(2)}x dd`)
      if (compareBin !== undefined) {
        row(`compare: ${COMPARE!}, one agent`.slice(-40), kc, { label: 'skopeo', s: median(sk) })
        console.log(`  ${''.padEnd(40)} ${''.padEnd(21)}  ${(median(dd) / median(kc)).toFixed(2)}x dd; this checkout ${(median(kc) / median(k1)).toFixed(2)}x as fast`)
      }
      row('kiln pull, three agents', k3, { label: 'skopeo', s: median(sk) })
      console.log(`  ${''.padEnd(40)} ${''.padEnd(21)}  ${(median(dd) / median(k3)).toFixed(2)}x dd`)
      const c = (xs: number[]): string => `${median(xs).toFixed(2)} s [${xs.map(x => x.toFixed(2)).join(', ')}]`
      console.log('  CPU seconds per pull (user + system, medians), client / serving side:')
      console.log(`    dd ${c(cpu.dd)}`)
      console.log(`    skopeo ${c(cpu.sk)} / docker-registry ${c(cpu.reg)}`)
      console.log(`    kiln pull, one agent ${c(cpu.k1)} / agent ${c(cpu.a1)}`)
      console.log(`    kiln pull, three agents ${c(cpu.k3)} / agents ${c(cpu.a3)}`)
      if (compareBin !== undefined) console.log(`    compare, one agent ${c(cpu.kc)} / agent ${c(cpu.ac)}`)
    }
    if (ONLY !== 'a') {
      const mem = await benchChild('mem-server')
      const tcp = await benchChild('tcp-server')
      const curlRun = (): number => {
        const r = spawnSync('curl', ['-s', '-L', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_total}', `http://${reg}/v2/bench/img/blobs/${img.layer}`], { encoding: 'utf8' })
        const [code, bytes, seconds] = r.stdout.split(' ')
        if (r.status !== 0 || code !== '200' || Number(bytes) !== SIZE) throw new Error(`curl GET of the layer: ${r.stdout}`)
        return Number(seconds)
      }
      if (String(mem.info.digest) !== img.layer) throw new Error('memory server holds other bytes')
      const tlsAddr = String(mem.info.addr)
      curlRun(); await blobStreamRun(tlsAddr, img.layer as Digest, { direct: true })
      const cu: number[] = []; const bd: number[] = []; const b1: number[] = []; const bl: number[] = []; const bn: number[] = []; const tc: number[] = []; const raw: number[] = []
      for (let i = 0; i < RUNS; i++) {
        cu.push(curlRun())
        bd.push(await blobStreamRun(tlsAddr, img.layer as Digest, { direct: true }))
        b1.push(await blobStreamRun(tlsAddr, img.layer as Digest, { direct: true, streams: 1 }))
        bl.push(await blobStreamRun(tlsAddr, img.layer as Digest, { direct: false }))
        bn.push(await blobStreamRun(String(mem.info.noiseAddr), img.layer as Digest, { direct: false }))
        tc.push(await tcpRun(Number(tcp.info.port)))
        raw.push(await rawStreamRun(tlsAddr))
      }
      console.log(`(b) raw stream, from memory, discarded  load ${loadavg()[0]!.toFixed(1)}`)
      row('curl GET from docker-registry (1 conn)', cu)
      row(`kiln blob protocol, ${DEFAULT_PER_PEER_CONCURRENCY} direct channels`, bd, { label: 'curl', s: median(cu) })
      row('kiln blob protocol, 1 direct channel', b1, { label: 'curl', s: median(cu) })
      row('extra: blob protocol, yamux on tcp+tls', bl, { label: 'curl', s: median(cu) })
      row('extra: blob protocol, tcp+noise+yamux', bn, { label: 'curl', s: median(cu) })
      row('extra: plain TCP, node child process', tc, { label: 'curl', s: median(cu) })
      row('extra: one libp2p stream (tls), no protocol', raw, { label: 'curl', s: median(cu) })
    }
  } finally {
    for (const c of children) { c.stdin?.end(); c.kill('SIGTERM') }
    await Promise.all(children.map(async c => { await new Promise(resolve => { if (c.exitCode !== null || c.signalCode !== null) resolve(undefined); else c.once('exit', resolve) }) }))
    rmSync(work, { recursive: true, force: true })
  }
}

// The bench's own kiln ends (the memory server, the blob-protocol client) run with kiln's heap tuning, as `kiln` does.
tuneHeapForBulkData()
const role = process.argv[2]
if (role === 'mem-server') await memServer()
else if (role === 'tcp-server') await tcpServer()
else await main().catch((err: unknown) => { console.error(err); process.exitCode = 1 })
