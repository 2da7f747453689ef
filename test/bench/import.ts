/**
 * Import benchmark: a 1 GiB single-layer image imported into kiln's store
 * (`kiln image import oci:...`) against `skopeo copy oci:... oci:...` of the
 * same image, in the same run, on the same disk. Both verify digests; kiln
 * also fsyncs every blob before it becomes visible.
 *
 *   npm run bench -- import            (KILN_BENCH_SIZE_MIB=1024 by default)
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, openSync, writeSync, closeSync, renameSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encodeHeader } from '../../src/oci/layer/tar-header.ts'

const sizeMiB = Number(process.env.KILN_BENCH_SIZE_MIB ?? 1024)
const runs = Number(process.env.KILN_BENCH_RUNS ?? 3)
const repo = join(import.meta.dirname, '..', '..')
const kiln = join(repo, 'src', 'cli', 'kiln.mjs')
const work = mkdtempSync(join(tmpdir(), 'kiln-bench-import-'))

function have (cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
}

/** An OCI layout with one image: one uncompressed tar layer holding one file of pseudo-random bytes. */
function makeLayout (dir: string): void {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true })
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  const tmp = join(dir, 'layer.tmp')
  const fd = openSync(tmp, 'w')
  const hash = createHash('sha256')
  const put = (b: Buffer): void => { hash.update(b); writeSync(fd, b) }
  const size = sizeMiB * 1024 * 1024
  put(encodeHeader({ name: 'payload.bin', type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime: 0, linkname: '', uname: '', gname: '', devmajor: 0, devminor: 0 }))
  const block = randomBytes(4 * 1024 * 1024)
  for (let done = 0; done < size; done += block.length) {
    block.writeUInt32LE(done / block.length, 0)
    put(block.subarray(0, Math.min(block.length, size - done)))
  }
  put(Buffer.alloc(1024))
  closeSync(fd)
  const layerDigest = `sha256:${hash.digest('hex')}`
  const layerSize = size + 512 + 1024
  renameSync(tmp, join(dir, 'blobs', 'sha256', layerDigest.slice(7)))
  const blob = (obj: unknown): { digest: string, size: number } => {
    const bytes = Buffer.from(JSON.stringify(obj))
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`
    writeFileSync(join(dir, 'blobs', 'sha256', digest.slice(7)), bytes)
    return { digest, size: bytes.length }
  }
  const config = blob({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layerDigest] }, config: {} })
  const manifest = blob({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layerSize }]
  })
  writeFileSync(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'big' } }]
  }))
}

function time (fn: () => void): number {
  const t = process.hrtime.bigint()
  fn()
  return Number(process.hrtime.bigint() - t) / 1e9
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

try {
  if (!have('skopeo')) throw new Error('skopeo is not installed (apt-get install skopeo)')
  const src = join(work, 'src')
  console.log(`making a ${sizeMiB} MiB single-layer OCI layout...`)
  makeLayout(src)
  const kilnTimes: number[] = []
  const skopeoTimes: number[] = []
  for (let i = 0; i < runs; i++) {
    // Alternate who goes first so page-cache warmth favours neither.
    const order = i % 2 === 0 ? ['kiln', 'skopeo'] : ['skopeo', 'kiln']
    for (const who of order) {
      const dest = join(work, `${who}-${i}`)
      if (who === 'kiln') {
        kilnTimes.push(time(() => execFileSync(process.execPath, [kiln, '--data-dir', dest, 'image', 'import', `oci:${src}:big`, '-t', 'bench/big:1'], { stdio: 'ignore' })))
      } else {
        skopeoTimes.push(time(() => execFileSync('skopeo', ['copy', '-q', `oci:${src}:big`, `oci:${dest}:big`], { stdio: 'ignore' })))
      }
      rmSync(dest, { recursive: true, force: true })
    }
  }
  const k = median(kilnTimes)
  const s = median(skopeoTimes)
  console.log(`import of a ${sizeMiB} MiB single-layer image, median of ${runs}:`)
  console.log(`  kiln image import   ${k.toFixed(2)} s  (${(sizeMiB / k).toFixed(0)} MiB/s)  runs: ${kilnTimes.map(t => t.toFixed(2)).join(' ')}`)
  console.log(`  skopeo copy oci:    ${s.toFixed(2)} s  (${(sizeMiB / s).toFixed(0)} MiB/s)  runs: ${skopeoTimes.map(t => t.toFixed(2)).join(' ')}`)
  console.log(`  ratio kiln/skopeo   ${(k / s).toFixed(2)}x  (goal: <= 1.00)`)
} finally {
  rmSync(work, { recursive: true, force: true })
}
