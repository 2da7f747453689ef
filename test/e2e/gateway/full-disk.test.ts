/**
 * A gateway whose data dir is on a full disk, run as an unprivileged user
 * (`kiln gateway` as uid 65534) over a small tmpfs the test mounts (root
 * only: skipped visibly otherwise, a failure under CI=true):
 * - a push larger than the space gets 507 with a message that says the
 *   registry's disk is full (chunked, monolithic, and through skopeo);
 * - the failed push is dropped at once: the space is free again and a small
 *   push right after works;
 * - a chunked push of 60% of the space works: a finished upload is moved
 *   into the store, not copied, so it never needs twice its size.
 */
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { readdir, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { kilnProcs } from '../../helpers/kiln-procs.ts'
import type { KilnProcs } from '../../helpers/kiln-procs.ts'
import { haveTools } from '../../helpers/tools.ts'
import { isRoot, makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { rawRequest } from './raw-client.ts'
import type { RawResponse } from './raw-client.ts'

const MiB = 1024 * 1024
const DISK_MIB = 32
const sha = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`

function canMount (): boolean {
  if (isRoot()) return true
  if (process.env.CI === 'true') throw new Error('CI=true but the tests do not run as root: the full-disk test must mount a tmpfs')
  console.warn('skipping the full-disk gateway test: mounting a tmpfs needs root')
  return false
}

/** A random blob of `mib` MiB (random bytes do not compress: a client cannot make it smaller). */
function randomBlob (mib: number): Buffer {
  const b = Buffer.allocUnsafe(mib * MiB)
  for (let off = 0; off < b.byteLength; off += MiB) randomBytes(MiB).copy(b, off)
  return b
}

describe.skipIf(!canMount() || !haveTools('mount', 'umount', 'setpriv', 'skopeo'))(`gateway on a full ${DISK_MIB} MiB disk`, () => {
  let u: Unprivileged
  let k: KilnProcs
  let disk: string
  let dataDir: string
  let port: number
  let url: string

  const free = async (): Promise<number> => { const s = await statfs(disk); return s.bavail * s.bsize }
  const code = (r: RawResponse): unknown => (JSON.parse(r.body) as { errors: unknown[] }).errors[0]

  /** Sends a request with `body` in 1 MiB pieces, stopping early if the answer comes first. */
  const push = async (method: string, path: string, body: Buffer, headers: Record<string, string> = {}): Promise<RawResponse> => {
    const x = await rawRequest(port, method, path, { 'content-length': String(body.byteLength), 'content-type': 'application/octet-stream', ...headers })
    let answered = false
    void x.response.then(() => { answered = true }, () => {})
    for (let off = 0; off < body.byteLength && !answered; off += MiB) if (!await x.send(body.subarray(off, off + MiB))) break
    const r = await x.response
    x.socket.destroy()
    return r
  }
  const session = async (repo: string): Promise<string> => {
    const r = await push('POST', `/v2/${repo}/blobs/uploads/`, Buffer.alloc(0))
    expect(r.status).toBe(202)
    return r.headers.location as string
  }
  const chunked = async (repo: string, blob: Buffer, pieces: number): Promise<RawResponse> => {
    const location = await session(repo)
    const step = Math.ceil(blob.byteLength / pieces)
    for (let off = 0; off < blob.byteLength; off += step) {
      const piece = blob.subarray(off, off + step)
      const r = await push('PATCH', location, piece, { 'content-range': `${off}-${off + piece.byteLength - 1}` })
      if (r.status !== 202) return r
    }
    return await push('PUT', `${location}?digest=${sha(blob)}`, Buffer.alloc(0))
  }
  const emptyDirs = async (): Promise<void> => {
    // `.claims` holds the live gateway's claim on the dir (src/util/scratch-claims.ts), not an upload.
    expect((await readdir(join(dataDir, 'gateway', 'uploads')).catch(() => [] as string[])).filter(n => n !== '.claims')).toEqual([])
    expect(await readdir(join(dataDir, 'store', 'ingest'))).toEqual([])
  }

  beforeAll(async () => {
    u = makeUnprivileged()
    k = kilnProcs(u)
    disk = join(u.work, 'disk')
    mkdirSync(disk)
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${DISK_MIB}m,mode=0755,uid=${u.uid},gid=${u.uid}`, 'tmpfs', disk])
    dataDir = join(disk, 'data')
    const gw = k.start(['gateway', '--listen', '127.0.0.1:0', '--anonymous-push', '--json', '--log-level', 'warn'], dataDir)
    url = (await gw.waitFor(/"url":\s*"(http:\/\/127\.0\.0\.1:\d+)"/))[1] as string
    port = Number(new URL(url).port)
  }, 120_000)

  afterAll(async () => {
    await k?.stopAll()
    if (disk !== undefined) {
      try { execFileSync('umount', [disk]) } catch { execFileSync('umount', ['-l', disk]) }
    }
    u?.cleanup()
  }, 60_000)

  it('answers a chunked push larger than the disk with 507 and frees its space at once', async () => {
    const before = await free()
    const big = randomBlob(DISK_MIB + 8)
    const r = await chunked('disk/big', big, 2)
    expect(r.status).toBe(507)
    expect(code(r)).toMatchObject({ code: 'UNKNOWN', message: expect.stringMatching(/registry's disk is full/) })
    await emptyDirs()
    expect(await free()).toBeGreaterThan(before - MiB)
  })

  it('answers a monolithic push larger than the disk with 507, and a small push right after works', async () => {
    const big = randomBlob(DISK_MIB + 8)
    const r = await push('POST', `/v2/disk/mono/blobs/uploads/?digest=${sha(big)}`, big)
    expect(r.status).toBe(507)
    expect(code(r)).toMatchObject({ code: 'UNKNOWN', message: expect.stringMatching(/disk is full/) })
    await emptyDirs()
    const small = randomBytes(64 * 1024)
    expect((await push('POST', `/v2/disk/small/blobs/uploads/?digest=${sha(small)}`, small)).status).toBe(201)
    expect((await chunked('disk/small', randomBytes(100 * 1024), 2)).status).toBe(201)
  })

  it('takes a chunked push of 60% of the disk: the upload is moved into the store, not copied', async () => {
    const blob = randomBlob(Math.round(DISK_MIB * 0.6))
    const before = await free()
    const r = await chunked('disk/sixty', blob, 3)
    expect(r.status, r.body).toBe(201)
    const used = before - await free()
    expect(used).toBeGreaterThanOrEqual(blob.byteLength)
    expect(used).toBeLessThan(blob.byteLength + 2 * MiB)
    await emptyDirs()
    const got = await fetch(`${url}/v2/disk/sixty/blobs/${sha(blob)}`)
    expect(sha(Buffer.from(await got.arrayBuffer()))).toBe(sha(blob))
  })

  // skopeo sends its chunked PATCH with `Connection: close`: the gateway must read the rest of the body before it
  // answers, or node:http closes the socket on unread bytes and skopeo sees "broken pipe" instead of the 507.
  it('tells skopeo the disk is full, and its next push works, every time', async () => {
    const layout = join(u.work, 'layout')
    const write = (digest: string, bytes: Buffer): void => { writeFileSync(join(layout, 'blobs', 'sha256', digest.slice(7)), bytes) }
    const image = (layer: Buffer): { digest: string, size: number } => {
      mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true })
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(layer)] } }))
      const manifest = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.byteLength },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: layer.byteLength }]
      }))
      for (const b of [layer, config, manifest]) write(sha(b), b)
      return { digest: sha(manifest), size: manifest.byteLength }
    }
    const big = image(randomBlob(DISK_MIB + 8))
    const small = image(randomBytes(32 * 1024))
    writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
    writeFileSync(join(layout, 'index.json'), JSON.stringify({
      schemaVersion: 2,
      manifests: [['big', big], ['small', small]].map(([tag, m]) => ({
        mediaType: 'application/vnd.oci.image.manifest.v1+json', ...(m as object), annotations: { 'org.opencontainers.image.ref.name': tag }
      }))
    }))
    const copy = (tag: string): { status: number, stderr: string } => {
      try {
        execFileSync('skopeo', ['copy', '--retry-times', '0', '--dest-tls-verify=false', `oci:${layout}:${tag}`, `docker://127.0.0.1:${port}/disk/skopeo:${tag}`], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 })
        return { status: 0, stderr: '' }
      } catch (err) {
        return { status: (err as { status: number }).status, stderr: String((err as { stderr: Buffer }).stderr) }
      }
    }
    // It failed one time in two before (a race between the reset and skopeo's read): five tries in a row.
    for (let i = 0; i < 5; i++) {
      const failed = copy('big')
      expect(failed.status).not.toBe(0)
      console.log(`skopeo on a full disk: ${failed.stderr.trim().split('\n').pop() ?? ''}`)
      expect(failed.stderr).toMatch(/507|Insufficient Storage|disk is full/)
      await emptyDirs()
    }
    expect(copy('small')).toEqual({ status: 0, stderr: '' })
  })
})
