/**
 * Streaming pull-through benchmark (issue 21 item 2): a single-layer image
 * (a tar holding one file of KILN_BENCH_SIZE_MIB MiB of random bytes, 1 GiB
 * by default) is pushed to gateway A and to Debian's docker-registry. Each
 * run starts a fresh gateway B attached to A over libp2p on loopback (the
 * layer is only on A), and times, in the same run, alternating:
 * - curl of the layer through B: time to first byte and total, against the
 *   same curl from docker-registry;
 * - `ctr images pull` (a private containerd, native snapshotter, fresh each
 *   pull) of the image through B in mirror mode (the hosts.toml of
 *   docs/gateway.md, `ns=docker.io`), against `ctr images pull --plain-http`
 *   straight from docker-registry.
 * Prints medians and ratios of speeds (registry time / gateway time; >= 1.0:
 * the gateway through the network is at least as fast). Extra lines: the
 * same ctr pull once B has stored the layer, and from it what a
 * fetch-then-serve gateway would take (B's fetch as curl timed it, plus
 * that pull), against streaming. Needs root (for
 * containerd), containerd, ctr, curl, tar and docker-registry; otherwise the
 * ctr part is skipped and says so.
 *
 *   npm run bench -- pullthrough    (KILN_BENCH_SIZE_MIB=1024, KILN_BENCH_RUNS=3, KILN_BENCH_ONLY=curl)
 *
 * KILN_BENCH_ONLY=curl times the curl lines alone (no containerd needed).
 * KILN_BENCH_COMPARE=DIR (another checkout of kiln, node_modules linked)
 * adds a curl through a gateway B running that checkout's kiln, alternated
 * with the others: a before/after in one run. The CPU seconds gateways A
 * and B spend during each curl are printed too (read from /proc; unlike
 * wall time they barely change with other load on the machine).
 */
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../helpers/http-service.ts'
import { findTool } from '../helpers/tools.ts'
import { pushImage } from './_push-image.ts'
import { childrenCpuSeconds, cpuSeconds } from './_cpu.ts'

const sizeMiB = Number(process.env.KILN_BENCH_SIZE_MIB ?? 1024)
const runs = Number(process.env.KILN_BENCH_RUNS ?? 3)
/** `curl`: the curl lines only. */
const only = process.env.KILN_BENCH_ONLY
/** Another checkout whose gateway B is timed beside this one's (curl lines). */
const compare = process.env.KILN_BENCH_COMPARE
const repo = join(import.meta.dirname, '..', '..')
const kiln = join(repo, 'src', 'cli', 'kiln.mjs')
const work = mkdtempSync(join(tmpdir(), 'kiln-bench-pullthrough-'))
const children = new Set<ChildProcess>()



async function waitFor (what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    if (await check().catch(() => false)) return
    if (Date.now() > deadline) throw new Error(`${what}: not ready within ${ms / 1000} s`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) { children.delete(child); return }
  const exited = new Promise(resolve => child.once('exit', resolve))
  const kill = setTimeout(() => { child.kill('SIGKILL') }, 15_000)
  child.kill('SIGTERM')
  await exited
  clearTimeout(kill)
  children.delete(child)
}

interface Ready { url: string, peerId: string, multiaddrs: string[] }

/** `kiln gateway --json` on loopback (HTTP and libp2p), ready once it printed its address. */
async function startGateway (name: string, extra: string[], bin = kiln): Promise<{ child: ChildProcess, ready: Ready }> {
  const child = spawn(process.execPath, [bin, '--data-dir', join(work, name), '--log-level', 'warn', 'gateway', '--listen', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0', '--anonymous-push', '--json', ...extra], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, HOME: work } })
  children.add(child)
  let out = ''
  const ready = await new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`gateway ${name} not ready in 60 s`)) }, 60_000)
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      try { const r = JSON.parse(out.slice(out.indexOf('{'))) as Ready; clearTimeout(timer); resolve(r) } catch { /* not all of it yet */ }
    })
    child.once('exit', code => { clearTimeout(timer); reject(new Error(`gateway ${name} exited (${code ?? 'signal'})`)) })
  })
  child.stdout?.resume()
  return { child, ready }
}

/** A tar of one file of random bytes: a valid layer that ctr can unpack, incompressible like a real one's payload. */
function makeLayer (dir: string): { path: string, digest: string, size: number } {
  const payload = join(dir, 'payload')
  mkdirSync(payload)
  const fd = openSync(join(payload, 'data.bin'), 'w')
  const block = randomBytes(4 * 1024 * 1024)
  for (let done = 0; done < sizeMiB * 1024 * 1024; done += block.length) {
    block.writeUInt32LE(done / block.length, 0)
    writeSync(fd, block)
  }
  closeSync(fd)
  const path = join(dir, 'layer.tar')
  const r = spawnSync('tar', ['-C', payload, '--owner=0', '--group=0', '-cf', path, 'data.bin'], { stdio: 'inherit' })
  if (r.status !== 0) throw new Error('tar failed')
  rmSync(payload, { recursive: true, force: true })
  const hash = createHash('sha256')
  const fdr = openSync(path, 'r')
  const buf = Buffer.allocUnsafe(8 * 1024 * 1024)
  for (;;) {
    const n = readSync(fdr, buf, 0, buf.length, null)
    if (n === 0) break
    hash.update(buf.subarray(0, n))
  }
  closeSync(fdr)
  return { path, digest: `sha256:${hash.digest('hex')}`, size: statSync(path).size }
}



/** curl of a URL into /dev/null: seconds to the first byte and in all. */
function curlTimes (url: string): { first: number, total: number } {
  const r = spawnSync('curl', ['-sf', '-o', '/dev/null', '-w', '%{time_starttransfer} %{time_total}', url], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`curl ${url} failed (${r.status ?? 'signal'})`)
  const [first, total] = r.stdout.trim().split(' ').map(Number) as [number, number]
  return { first, total }
}

/** A fresh gateway B attached to A, with the small blobs of the image already pulled through (so B is connected to A). */
async function freshB (a: Ready, name: string, warm: string, bin = kiln): Promise<{ child: ChildProcess, ready: Ready }> {
  rmSync(join(work, name), { recursive: true, force: true })
  const b = await startGateway(name, ['--bootstrap', a.multiaddrs[0] as string], bin)
  await waitFor(`${name} pulling the config through A`, async () => (await fetch(`${b.ready.url}/v2/bench/img/blobs/${warm}`, { method: 'HEAD' })).status === 200)
  return b
}

/** A private containerd in a fresh root; `pull` times one `ctr images pull`. */
async function withContainerd<T> (name: string, hostsToml: string | undefined, work2: (pull: (ref: string, flags: string[]) => number) => Promise<T>): Promise<T> {
  const root = join(work, name)
  rmSync(root, { recursive: true, force: true })
  mkdirSync(join(root, 'certs.d', 'docker.io'), { recursive: true })
  if (hostsToml !== undefined) writeFileSync(join(root, 'certs.d', 'docker.io', 'hosts.toml'), hostsToml)
  const sock = join(root, 'containerd.sock')
  writeFileSync(join(root, 'config.toml'), [
    'version = 2', `root = "${join(root, 'root')}"`, `state = "${join(root, 'state')}"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]', '[grpc]', `  address = "${sock}"`,
    '[plugins."io.containerd.internal.v1.opt"]', `  path = "${join(root, 'opt')}"`
  ].join('\n') + '\n')
  const child = spawn('containerd', ['--config', join(root, 'config.toml')], { stdio: 'ignore' })
  children.add(child)
  try {
    await waitFor('containerd', async () => spawnSync('ctr', ['--address', sock, 'version'], { stdio: 'ignore', timeout: 10_000 }).status === 0)
    return await work2((ref, flags) => {
      const t0 = performance.now()
      const r = spawnSync('ctr', ['--address', sock, 'images', 'pull', '--snapshotter', 'native', '--hosts-dir', join(root, 'certs.d'), ...flags, ref], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 600_000 })
      const seconds = (performance.now() - t0) / 1000
      if (r.status !== 0) throw new Error(`ctr images pull ${ref} failed`)
      return seconds
    })
  } finally {
    await stop(child)
    rmSync(root, { recursive: true, force: true })
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
const fmt = (xs: number[]): string => xs.map(x => x.toFixed(2)).join(', ')

async function main (): Promise<void> {
  if (findTool('docker-registry') === undefined || findTool('curl') === undefined || findTool('tar') === undefined) {
    console.log('pullthrough bench skipped: needs docker-registry, curl and tar (apt-get install docker-registry curl tar)')
    return
  }
  const withCtr = only !== 'curl' && findTool('containerd') !== undefined && findTool('ctr') !== undefined && process.getuid?.() === 0
  if (only === 'curl') console.log('ctr part left out (KILN_BENCH_ONLY=curl)')
  else if (!withCtr) console.log('ctr part skipped: needs root, containerd and ctr (apt-get install containerd)')
  console.log(`load average at start: ${loadavg().map(x => x.toFixed(2)).join(' ')}`)
  console.log(`making a ${sizeMiB} MiB layer...`)
  const layer = makeLayer(work)

  const regPort = await freePort()
  writeFileSync(join(work, 'registry.yml'), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(work, 'registry')}\nhttp:\n  addr: 127.0.0.1:${regPort}\n`)
  const registry = spawn('/usr/bin/docker-registry', ['serve', join(work, 'registry.yml')], { stdio: 'ignore' })
  children.add(registry)
  const reg = `http://127.0.0.1:${regPort}`
  await waitFor('docker-registry', async () => (await fetch(`${reg}/v2/`)).ok)
  const a = await startGateway('a', [])
  console.log('pushing the image to gateway A and to docker-registry...')
  const image = await pushImage(a.ready.url, layer)
  await pushImage(reg, layer)
  rmSync(layer.path)
  const layerPath = `/v2/bench/img/blobs/${layer.digest}`

  const ttfb = { reg: [] as number[], gw: [] as number[] }
  const curlTotal = { reg: [] as number[], gw: [] as number[], before: [] as number[] }
  /** CPU seconds of A and B during each curl through B (and through the compared B). */
  const cpu = { a: [] as number[], b: [] as number[], beforeA: [] as number[], beforeB: [] as number[] }
  /** curl of the layer through a fresh B of `bin`: its times and the CPU seconds A and B spent during it. */
  const throughB = async (bin: string): Promise<{ first: number, total: number, cpuA: number, cpuB: number }> => {
    const b = await freshB(a.ready, 'b', image.config, bin)
    const [a0, b0] = [cpuSeconds(a.child.pid), cpuSeconds(b.child.pid)]
    const g = curlTimes(`${b.ready.url}${layerPath}`)
    const used = { cpuA: cpuSeconds(a.child.pid) - a0, cpuB: cpuSeconds(b.child.pid) - b0 }
    await stop(b.child)
    return { ...g, ...used }
  }
  /**
   * The same fetch from A without a gateway: `kiln pull` of the image into a fresh data dir (the
   * process's start-up included), with the CPU seconds of A and of the puller.
   */
  const pulls: number[] = []
  const pullCpu = { a: [] as number[], puller: [] as number[] }
  const pullFromA = (): void => {
    const dataDir = join(work, 'puller')
    const statFile = join(work, 'puller.stat')
    rmSync(dataDir, { recursive: true, force: true })
    const a0 = cpuSeconds(a.child.pid)
    const t0 = performance.now()
    // Through sh, whose /proc stat counts the pull's CPU once it has waited for it.
    const r = spawnSync('sh', ['-c', 'f=$1; shift; "$@"; s=$?; cat /proc/$$/stat > "$f"; exit $s', 'sh', statFile,
      process.execPath, kiln, '--data-dir', dataDir, '--log-level', 'warn', 'pull', `bench/img@${image.manifest}`, '--no-mdns', '--progress=quiet',
      '--bootstrap', a.ready.multiaddrs[0] as string, '--from', a.ready.peerId], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, HOME: work } })
    pulls.push((performance.now() - t0) / 1000)
    pullCpu.a.push(cpuSeconds(a.child.pid) - a0)
    rmSync(dataDir, { recursive: true, force: true })
    if (r.status !== 0) throw new Error(`kiln pull from A failed (${r.status ?? 'signal'})`)
    pullCpu.puller.push(childrenCpuSeconds(statFile))
  }
  const ctr = { reg: [] as number[], gw: [] as number[], warm: [] as number[], stored: [] as number[] }
  // One warm-up of each path (page cache, process start-up), not counted.
  for (let i = -1; i < runs; i++) {
    const r = curlTimes(`${reg}${layerPath}`)
    const g = await throughB(kiln)
    const before = compare === undefined ? undefined : await throughB(join(compare, 'src', 'cli', 'kiln.mjs'))
    pullFromA()
    if (i < 0) { pulls.length = 0; pullCpu.a.length = 0; pullCpu.puller.length = 0 }
    if (i >= 0) {
      ttfb.reg.push(r.first); ttfb.gw.push(g.first); curlTotal.reg.push(r.total); curlTotal.gw.push(g.total)
      cpu.a.push(g.cpuA); cpu.b.push(g.cpuB)
      if (before !== undefined) { curlTotal.before.push(before.total); cpu.beforeA.push(before.cpuA); cpu.beforeB.push(before.cpuB) }
    }
    if (!withCtr) continue
    const regRef = `127.0.0.1:${regPort}/bench/img@${image.manifest}`
    const rt = await withContainerd('ctr-reg', undefined, async pull => pull(regRef, ['--plain-http']))
    const b2 = await freshB(a.ready, 'b', image.config)
    const hosts = `server = "https://registry-1.docker.io"\n\n[host."${b2.ready.url}"]\n  capabilities = ["pull", "resolve"]\n  skip_verify = true\n`
    const gt = await withContainerd('ctr-gw', hosts, async pull => pull(`docker.io/bench/img@${image.manifest}`, []))
    // B has the layer now: what a client waits once a fetch-then-serve gateway has stored it.
    const wt = await withContainerd('ctr-gw', hosts, async pull => pull(`docker.io/bench/img@${image.manifest}`, []))
    await stop(b2.child)
    if (i >= 0) { ctr.reg.push(rt); ctr.gw.push(gt); ctr.warm.push(wt); ctr.stored.push(g.total + wt) }
  }
  const mbps = (s: number): string => (layer.size / s / 1e6).toFixed(0)
  console.log(`curl of the ${sizeMiB} MiB layer, ${runs} runs (median), gateway B pulling it through from A (fresh B each run):`)
  console.log(`  docker-registry: first byte ${median(ttfb.reg).toFixed(3)} s, all ${median(curlTotal.reg).toFixed(2)} s (${mbps(median(curlTotal.reg))} MB/s)  runs ${fmt(curlTotal.reg)}`)
  console.log(`  kiln gateway B:  first byte ${median(ttfb.gw).toFixed(3)} s, all ${median(curlTotal.gw).toFixed(2)} s (${mbps(median(curlTotal.gw))} MB/s)  runs ${fmt(curlTotal.gw)}; first bytes ${fmt(ttfb.gw)}`)
  console.log(`  first byte at ${(100 * median(ttfb.gw) / median(curlTotal.gw)).toFixed(1)}% of the gateway's transfer; ratio of speeds (registry / gateway): ${(median(curlTotal.reg) / median(curlTotal.gw)).toFixed(2)}x`)
  console.log(`  CPU seconds during the curl: gateway A ${median(cpu.a).toFixed(2)} s [${fmt(cpu.a)}], gateway B ${median(cpu.b).toFixed(2)} s [${fmt(cpu.b)}]`)
  console.log(`  kiln pull of the image from A, no gateway (process start-up included): ${median(pulls).toFixed(2)} s  runs ${fmt(pulls)}; CPU seconds: A ${median(pullCpu.a).toFixed(2)} s [${fmt(pullCpu.a)}], puller ${median(pullCpu.puller).toFixed(2)} s [${fmt(pullCpu.puller)}]`)
  if (compare !== undefined) {
    console.log(`  compare: B of ${compare}: all ${median(curlTotal.before).toFixed(2)} s  runs ${fmt(curlTotal.before)}; this checkout ${(median(curlTotal.before) / median(curlTotal.gw)).toFixed(2)}x as fast`)
    console.log(`    CPU seconds during the curl: gateway A ${median(cpu.beforeA).toFixed(2)} s [${fmt(cpu.beforeA)}], gateway B ${median(cpu.beforeB).toFixed(2)} s [${fmt(cpu.beforeB)}]`)
  }
  if (withCtr) {
    console.log(`ctr images pull (native snapshotter, unpacked), ${runs} runs (median):`)
    console.log(`  from docker-registry:              ${median(ctr.reg).toFixed(2)} s  runs ${fmt(ctr.reg)}`)
    console.log(`  mirror mode through B (layer on A): ${median(ctr.gw).toFixed(2)} s  runs ${fmt(ctr.gw)}`)
    console.log(`  ratio of speeds (registry / gateway): ${(median(ctr.reg) / median(ctr.gw)).toFixed(2)}x  (>= 1.0: the gateway at least as fast)`)
    console.log(`  extra: through B once B has the layer: ${median(ctr.warm).toFixed(2)} s  runs ${fmt(ctr.warm)}; ratio of speeds (registry / that): ${(median(ctr.reg) / median(ctr.warm)).toFixed(2)}x, the ceiling for streaming here (ctr's own hashing, writing and unpacking)`)
    console.log(`  extra: fetch-then-serve, derived (B's fetch as timed by curl + the pull once stored): ${median(ctr.stored).toFixed(2)} s  runs ${fmt(ctr.stored)}; streaming / that, ratio of speeds: ${(median(ctr.stored) / median(ctr.gw)).toFixed(2)}x`)
  }
  console.log(`load average at end: ${loadavg().map(x => x.toFixed(2)).join(' ')}`)
}

main().then(() => undefined, (err: Error) => { console.error(err); process.exitCode = 1 }).finally(async () => {
  for (const c of [...children]) await stop(c)
  rmSync(work, { recursive: true, force: true })
})
