/**
 * Gateway benchmark: `skopeo copy` of a single-layer image (1 GiB by
 * default) from `kiln gateway` to an OCI layout, against the same copy from
 * Debian's docker-registry (`/usr/bin/docker-registry serve CONFIG`), in the
 * same run, alternating, on the same disk. Prints medians and the ratio
 * registry time / gateway time (>= 1.0: the gateway is at least as fast).
 * Also times the layer alone with curl to /dev/null: the servers' own
 * speed, without skopeo's hashing and disk writes (where the end-to-end
 * time mostly goes).
 *
 *   npm run bench -- gateway        (KILN_BENCH_SIZE_MIB=1024, KILN_BENCH_RUNS=3)
 */
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../helpers/http-service.ts'
import { findTool } from '../helpers/tools.ts'
import { pushImage } from './_push-image.ts'

const sizeMiB = Number(process.env.KILN_BENCH_SIZE_MIB ?? 1024)
const runs = Number(process.env.KILN_BENCH_RUNS ?? 3)
const repo = join(import.meta.dirname, '..', '..')
const kiln = join(repo, 'src', 'cli', 'kiln.mjs')
const work = mkdtempSync(join(tmpdir(), 'kiln-bench-gateway-'))
const children: ChildProcess[] = []



async function waitUp (url: string): Promise<void> {
  const deadline = Date.now() + 30_000
  for (;;) {
    try { const r = await fetch(`${url}/v2/`); await r.body?.cancel(); return } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`${url} did not come up`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

/** A file of pseudo-random bytes (the layer; registries do not look inside) and its digest. */
function makeLayer (path: string): { digest: string, size: number } {
  const fd = openSync(path, 'w')
  const hash = createHash('sha256')
  const block = randomBytes(4 * 1024 * 1024)
  const size = sizeMiB * 1024 * 1024
  for (let done = 0; done < size; done += block.length) {
    block.writeUInt32LE(done / block.length, 0)
    const piece = block.subarray(0, Math.min(block.length, size - done))
    hash.update(piece)
    writeSync(fd, piece)
  }
  closeSync(fd)
  return { digest: `sha256:${hash.digest('hex')}`, size }
}


function timeCopy (hostPort: string, label: string): number {
  const dest = join(work, `out-${label}`)
  rmSync(dest, { recursive: true, force: true })
  const t0 = performance.now()
  const r = spawnSync('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${hostPort}/bench/img:v1`, `oci:${dest}:v1`], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, HOME: work } })
  const seconds = (performance.now() - t0) / 1000
  if (r.status !== 0) throw new Error(`skopeo copy from ${label} failed`)
  rmSync(dest, { recursive: true, force: true })
  return seconds
}

/** Seconds for curl to read the layer blob into /dev/null. */
function timeCurl (hostPort: string, digest: string): number {
  const r = spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{time_total}', `http://${hostPort}/v2/bench/img/blobs/${digest}`], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`curl from ${hostPort} failed`)
  return Number(r.stdout)
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

async function main (): Promise<void> {
  if (findTool('skopeo') === undefined || findTool('docker-registry') === undefined) {
    console.log('gateway bench skipped: needs skopeo and docker-registry (apt-get install skopeo docker-registry)')
    return
  }
  console.log(`making a ${sizeMiB} MiB layer...`)
  const layerPath = join(work, 'layer.bin')
  const layer = makeLayer(layerPath)

  const regPort = await freePort()
  writeFileSync(join(work, 'registry.yml'), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(work, 'registry')}\nhttp:\n  addr: 127.0.0.1:${regPort}\n`)
  children.push(spawn('/usr/bin/docker-registry', ['serve', join(work, 'registry.yml')], { stdio: 'ignore' }))
  const gwPort = await freePort()
  children.push(spawn(process.execPath, [kiln, '--data-dir', join(work, 'kiln'), '--log-level', 'warn', 'gateway', '--listen', `127.0.0.1:${gwPort}`, '--anonymous-push'], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, HOME: work } }))
  await waitUp(`http://127.0.0.1:${regPort}`)
  await waitUp(`http://127.0.0.1:${gwPort}`)
  console.log('pushing the image to both...')
  await pushImage(`http://127.0.0.1:${regPort}`, { path: layerPath, ...layer })
  await pushImage(`http://127.0.0.1:${gwPort}`, { path: layerPath, ...layer })
  rmSync(layerPath)

  // One warm-up each (page cache, skopeo's own start-up), then alternate.
  timeCopy(`127.0.0.1:${regPort}`, 'registry')
  timeCopy(`127.0.0.1:${gwPort}`, 'gateway')
  const reg: number[] = []
  const gw: number[] = []
  for (let i = 0; i < runs; i++) {
    reg.push(timeCopy(`127.0.0.1:${regPort}`, 'registry'))
    gw.push(timeCopy(`127.0.0.1:${gwPort}`, 'gateway'))
  }
  const size = statSync(join(work, 'kiln')).isDirectory() ? layer.size : 0
  const mbps = (s: number): string => (size / s / 1e6).toFixed(0)
  if (findTool('curl') !== undefined) {
    const regCurl: number[] = []
    const gwCurl: number[] = []
    for (let i = 0; i < runs; i++) {
      regCurl.push(timeCurl(`127.0.0.1:${regPort}`, layer.digest))
      gwCurl.push(timeCurl(`127.0.0.1:${gwPort}`, layer.digest))
    }
    console.log(`curl -o /dev/null of the ${sizeMiB} MiB layer, ${runs} runs (median):`)
    console.log(`  docker-registry: ${median(regCurl).toFixed(2)} s (${mbps(median(regCurl))} MB/s)`)
    console.log(`  kiln gateway:    ${median(gwCurl).toFixed(2)} s (${mbps(median(gwCurl))} MB/s)`)
    console.log(`  ratio (registry / gateway): ${(median(regCurl) / median(gwCurl)).toFixed(2)}x`)
  }
  console.log(`skopeo copy docker://... oci:..., ${sizeMiB} MiB single-layer image, ${runs} runs (median):`)
  console.log(`  docker-registry: ${median(reg).toFixed(2)} s (${mbps(median(reg))} MB/s)  runs ${reg.map(x => x.toFixed(2)).join(', ')}`)
  console.log(`  kiln gateway:    ${median(gw).toFixed(2)} s (${mbps(median(gw))} MB/s)  runs ${gw.map(x => x.toFixed(2)).join(', ')}`)
  console.log(`  ratio (registry / gateway): ${(median(reg) / median(gw)).toFixed(2)}x  (>= 1.0: gateway at least as fast)`)
}

main().then(() => undefined, (err: Error) => { console.error(err); process.exitCode = 1 }).finally(() => {
  for (const c of children) c.kill('SIGTERM')
  rmSync(work, { recursive: true, force: true })
})
