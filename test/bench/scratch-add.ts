/**
 * Scratch-add benchmark: building an image `FROM scratch` + `ADD rootfs.tar /`
 * from the 170 MB Debian 12 minbase tar (test/helpers/debian-base.ts) and
 * writing it, gzip-compressed, to an OCI layout. kiln does it in one command
 * as uid 65534 (`kiln build --output oci:DIR:base`); the reference is buildah
 * as root, `buildah bud --isolation chroot` (vfs storage in temp dirs) then
 * `buildah push` to an OCI layout (gzip, buildah's default), timed together.
 * Runs alternate and start from empty stores; the medians are compared.
 * kiln is timed twice per run: gzip layers (the default, what buildah
 * pushes: the comparison the goal is about) and zstd layers
 * (`--output type=oci-layout,...,compression=zstd`), reported apart.
 *
 * A second part compresses the same tar in-process with one gzip stream
 * (node:zlib createGzip, what layers used before) and with kiln's block
 * compression (src/oci/layer/compression.ts), same level, same run.
 *
 * Goal (issue 21 item 4): kiln <= 0.5x buildah bud + push.
 *
 * Run: npm run bench -- scratch-add   (needs root and buildah; KILN_BENCH_RUNS=3,
 * KILN_BENCH_TIMEOUT_S=600 bounds each build)
 */
import { spawnSync } from 'node:child_process'
import { copyFileSync, createReadStream, linkSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import { GZIP_LEVEL } from '../../src/oci/constants.ts'
import { compressBlocks } from '../../src/oci/layer/compression.ts'
import { debianBase } from '../helpers/debian-base.ts'
import { makeUnprivileged } from '../helpers/unprivileged.ts'

const RUNS = Number(process.env.KILN_BENCH_RUNS ?? '3')
const TIMEOUT_MS = Number(process.env.KILN_BENCH_TIMEOUT_S ?? '600') * 1000

if (process.getuid?.() !== 0 || spawnSync('buildah', ['--version']).status !== 0) {
  console.log('scratch-add bench skipped: it needs root and buildah (buildah as root is the reference; the Debian base is made by mmdebstrap --mode=root)')
  process.exit(0)
}

const load = (): string => loadavg().map(l => l.toFixed(2)).join(' ')
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m] as number : ((s[m - 1] as number) + (s[m] as number)) / 2
}
// buildah wants a lowercase path in oci: references: no mkdtemp suffix
const dir = join(tmpdir(), `kiln-bench-scratch-add-${process.pid}`)
mkdirSync(dir, { mode: 0o755 })
const u = makeUnprivileged()

function timed (label: string, run: () => void): number {
  const t0 = performance.now()
  run()
  const s = (performance.now() - t0) / 1000
  console.log(`${label.padEnd(28)} ${s.toFixed(2)} s   (load ${load()})`)
  return s
}

function check (label: string, r: { status: number | null, stderr: string }): void {
  if (r.status !== 0) throw new Error(`${label} failed (${String(r.status)}): ${r.stderr.slice(-3000)}`)
}

async function compressionPart (tar: string): Promise<void> {
  const sink = (count: { n: number }): Writable => new Writable({ write (c: Buffer, _e, cb) { count.n += c.byteLength; cb() } })
  const one: number[] = []
  const blocks: number[] = []
  let sizes = ''
  for (let r = 0; r < RUNS; r++) {
    const a = { n: 0 }
    let t0 = performance.now()
    await pipeline(createReadStream(tar, { highWaterMark: 1 << 20 }), createGzip({ level: GZIP_LEVEL }), sink(a))
    one.push((performance.now() - t0) / 1000)
    const b = { n: 0 }
    t0 = performance.now()
    for await (const c of compressBlocks(createReadStream(tar, { highWaterMark: 1 << 20 }), 'gzip')) b.n += c.byteLength
    blocks.push((performance.now() - t0) / 1000)
    sizes = `${a.n} vs ${b.n} bytes`
  }
  console.log(`gzip of the tar, one stream   ${one.map(s => s.toFixed(2)).join(', ')} s`)
  console.log(`gzip of the tar, blocks       ${blocks.map(s => s.toFixed(2)).join(', ')} s  (${sizes})`)
  console.log(`ratio blocks/one stream ${(median(blocks) / median(one)).toFixed(2)} (load ${load()})`)
}

const root = join(dir, 'buildah-root')
const runroot = join(dir, 'buildah-runroot')
const storage = ['--root', root, '--runroot', runroot, '--storage-driver', 'vfs']
try {
  console.log(`load average at start: ${load()}`)
  const tar = debianBase()
  if (tar === undefined) throw new Error('no Debian base and not root to make one')
  const ctx = join(u.work, 'ctx')
  mkdirSync(ctx)
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nADD rootfs.tar /\nCMD ["/bin/bash"]\n')
  try { linkSync(tar, join(ctx, 'rootfs.tar')) } catch { copyFileSync(tar, join(ctx, 'rootfs.tar')) }
  u.give(ctx)

  const kilnTimes: number[] = []
  const zstdTimes: number[] = []
  const buildahTimes: number[] = []
  for (let r = 0; r < RUNS; r++) {
    const kilnRun = (label: string, output: (layout: string) => string, times: number[]): void => {
      const out = join(dir, `kiln-out-${r}`)
      mkdirSync(out)
      u.give(out)
      const dataDir = join(u.home, `data-${r}`)
      times.push(timed(`${label} #${r + 1}`, () => {
        check('kiln build', u.kiln(['build', '--output', output(join(out, 'layout')), ctx], { dataDir, timeoutMs: TIMEOUT_MS }))
      }))
      rmSync(dataDir, { recursive: true, force: true })
      rmSync(out, { recursive: true, force: true })
    }
    const gzipRun = (): void => { kilnRun('kiln build, gzip', layout => `oci:${layout}:base`, kilnTimes) }
    const zstdRun = (): void => { kilnRun('kiln build, zstd', layout => `type=oci-layout,dest=${layout},name=base,compression=zstd`, zstdTimes) }
    if (r % 2 === 0) { gzipRun(); zstdRun() } else { zstdRun(); gzipRun() }

    const bOut = join(dir, `buildah-out-${r}`)
    mkdirSync(bOut)
    const spawn = (args: string[]): void => {
      check(`buildah ${args[0] ?? ''}`, spawnSync('buildah', [...storage, ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: TIMEOUT_MS, killSignal: 'SIGKILL' }))
    }
    buildahTimes.push(timed(`buildah bud + push #${r + 1}`, () => {
      spawn(['bud', '--isolation', 'chroot', '-t', 'bench/scratch-add:1', '-f', join(ctx, 'Dockerfile'), ctx])
      spawn(['push', 'bench/scratch-add:1', `oci:${join(bOut, 'layout')}:base`])
    }))
    spawnSync('buildah', [...storage, 'rmi', '--all', '--force'])
    rmSync(bOut, { recursive: true, force: true })
  }
  console.log(`ratio kiln/buildah, gzip layers (medians of ${RUNS}) ${(median(kilnTimes) / median(buildahTimes)).toFixed(2)} (goal <= 0.5)`)
  console.log(`ratio kiln/buildah, kiln's layers zstd, buildah's gzip (medians of ${RUNS}) ${(median(zstdTimes) / median(buildahTimes)).toFixed(2)}`)
  await compressionPart(tar)
  console.log(`load average at end: ${load()}`)
} finally {
  spawnSync('buildah', [...storage, 'rm', '--all'])
  u.cleanup()
  rmSync(dir, { recursive: true, force: true })
}
