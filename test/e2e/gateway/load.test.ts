/**
 * Many clients pulling one image at once from a `kiln gateway` process:
 * every client gets every blob with the right digest, the whole run is
 * bounded in time, and the gateway's memory does not grow with the bytes
 * served (blobs stream from their files; nothing is buffered whole).
 *
 * CI (CI=true) and `KILN_LOAD_FULL=1` run the figure: 200
 * concurrent pulls of a 100 MiB image (about 70 s here). A developer run
 * defaults to 50 pulls of a 16 MiB image; `KILN_LOAD_FULL=0` forces that
 * in CI too. `KILN_LOAD_PULLS` / `KILN_LOAD_MIB` override either.
 */
import { createHash, randomBytes } from 'node:crypto'
import { readFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startKiln } from './process.ts'
import type { KilnProcess } from './process.ts'

const FULL = process.env.KILN_LOAD_FULL === '1' || (process.env.CI === 'true' && process.env.KILN_LOAD_FULL !== '0')
const PULLS = Number(process.env.KILN_LOAD_PULLS ?? (FULL ? 200 : 50))
const MIB = Number(process.env.KILN_LOAD_MIB ?? (FULL ? 100 : 16))
const DEADLINE_MS = FULL ? 300_000 : 60_000

const sha = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`

async function rssOf (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  const m = /VmRSS:\s+(\d+) kB/.exec(status)
  return m === null ? 0 : Number(m[1]) * 1024
}

describe(`${PULLS} concurrent pulls of a ${MIB} MiB image`, () => {
  let dir: string
  let gw: KilnProcess<{ url: string }>
  const image = { manifest: '', config: '', layer: '', layerSize: MIB * 1024 * 1024 }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-gw-load-'))
    gw = await startKiln(['--data-dir', join(dir, 'data'), '--log-level', 'warn', 'gateway', '--listen', '127.0.0.1:0', '--anonymous-push', '--json'], { env: { HOME: dir } })
    const put = async (path: string, body: Uint8Array, type = 'application/octet-stream'): Promise<void> => {
      const res = await fetch(`${gw.ready.url}${path}`, { method: path.includes('/manifests/') ? 'PUT' : 'POST', body, headers: { 'content-type': type } })
      expect(res.status, await res.text()).toBe(201)
    }
    // The layer: random, in 1 MiB pieces so the test never holds more than one copy.
    const layer = Buffer.allocUnsafe(image.layerSize)
    for (let off = 0; off < layer.byteLength; off += 1 << 20) randomBytes(Math.min(1 << 20, layer.byteLength - off)).copy(layer, off)
    image.layer = sha(layer)
    await put(`/v2/load/img/blobs/uploads/?digest=${image.layer}`, layer)
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [image.layer] } }))
    image.config = sha(config)
    await put(`/v2/load/img/blobs/uploads/?digest=${image.config}`, config)
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: image.config, size: config.byteLength },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: image.layer, size: layer.byteLength }]
    }))
    image.manifest = sha(manifest)
    await put('/v2/load/img/manifests/v1', manifest, 'application/vnd.oci.image.manifest.v1+json')
  }, 120_000)

  afterAll(async () => {
    await gw?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('serves every client the right bytes, in bounded time and memory', async () => {
    const pid = gw.child.pid as number
    const baseline = await rssOf(pid)
    let peak = baseline
    const sampler = setInterval(() => { void rssOf(pid).then(r => { peak = Math.max(peak, r) }) }, 100)
    const signal = AbortSignal.timeout(DEADLINE_MS)
    const started = performance.now()
    /** GETs a path and returns the sha256 of the streamed body, never holding it whole. */
    const digestOf = async (path: string, accept?: string): Promise<{ digest: string, size: number }> => {
      const res = await fetch(`${gw.ready.url}${path}`, { signal, headers: accept === undefined ? {} : { accept } })
      expect(res.status).toBe(200)
      const hash = createHash('sha256')
      let size = 0
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) { hash.update(chunk); size += chunk.byteLength }
      return { digest: `sha256:${hash.digest('hex')}`, size }
    }
    try {
      const results = await Promise.all(Array.from({ length: PULLS }, async () => {
        const m = await digestOf('/v2/load/img/manifests/v1', 'application/vnd.oci.image.manifest.v1+json')
        const c = await digestOf(`/v2/load/img/blobs/${image.config}`)
        const l = await digestOf(`/v2/load/img/blobs/${image.layer}`)
        return [m.digest, c.digest, l.digest, l.size]
      }))
      for (const r of results) expect(r).toEqual([image.manifest, image.config, image.layer, image.layerSize])
    } finally {
      clearInterval(sampler)
    }
    const seconds = (performance.now() - started) / 1000
    const servedMiB = PULLS * MIB
    const growth = peak - baseline
    console.log(`load: ${PULLS} pulls x ${MIB} MiB in ${seconds.toFixed(1)} s (${(servedMiB / seconds).toFixed(0)} MiB/s), gateway RSS ${(baseline / 2 ** 20).toFixed(0)} -> peak ${(peak / 2 ** 20).toFixed(0)} MiB`)
    expect(seconds * 1000).toBeLessThan(DEADLINE_MS)
    // Streaming: growth is per-connection buffers (a few MiB each at most), never the bytes served.
    expect(growth).toBeLessThan(64 * 2 ** 20 + PULLS * 4 * 2 ** 20)
    expect(growth).toBeLessThan(servedMiB * 2 ** 20 / 4)
  }, DEADLINE_MS + 60_000)
})
