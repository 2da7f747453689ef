/**
 * Test helpers for the OCI module: temp dirs, tars built with tar-stream (an
 * implementation independent of kiln's reader), raw header blocks for inputs
 * tar-stream refuses to write, and a tree snapshot to prove nothing changed.
 */
import { lstatSync, readdirSync, readlinkSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import tar from 'tar-stream'
import type { Header } from 'tar-stream'
import { tempDirs as makeTempDirs } from '../../helpers/temp.ts'
import type { TempDirs } from '../../helpers/temp.ts'
import { createFsContentStore } from '../../../src/content/index.ts'
import type { ContentStore } from '../../../src/content/index.ts'
import * as oci from '../../../src/oci/index.ts'
import type { Descriptor } from '../../../src/oci/index.ts'

export type { TempDirs } from '../../helpers/temp.ts'

export function tempDirs (): TempDirs {
  return makeTempDirs('kiln-oci-')
}

export async function makeStore (dirs: TempDirs): Promise<ContentStore> {
  return await createFsContentStore({ root: join(dirs.make('kiln-oci-store-'), 'store') })
}

export type TarInput = Partial<Header> & { name: string, body?: string | Uint8Array }

/** Builds an uncompressed tar with tar-stream. */
export async function buildTar (entries: TarInput[]): Promise<Buffer> {
  const pack = tar.pack()
  const chunks: Buffer[] = []
  pack.on('data', (c: unknown) => { chunks.push(c as Buffer) })
  const done = new Promise<void>((resolve, reject) => { pack.on('end', resolve); pack.on('error', reject) })
  for (const { body, ...header } of entries) {
    const data = body === undefined ? undefined : typeof body === 'string' ? Buffer.from(body) : Buffer.from(body)
    const h = { mode: header.type === 'directory' ? 0o755 : 0o644, ...header, ...(data === undefined ? {} : { size: data.length }) }
    if (data === undefined) pack.entry(h)
    else pack.entry(h, data)
  }
  pack.finalize()
  await done
  return Buffer.concat(chunks)
}

export async function buildTarGz (entries: TarInput[]): Promise<Buffer> {
  return gzipSync(await buildTar(entries))
}

/** A raw 512-byte header block with a valid checksum (for hostile inputs). */
export function rawHeader (name: string, flag: string, size: number): Buffer {
  const b = Buffer.alloc(512)
  b.write(name, 0, 100, 'utf8')
  b.write('0000644\0', 100, 8, 'latin1')
  b.write('0000000\0', 108, 8, 'latin1')
  b.write('0000000\0', 116, 8, 'latin1')
  b.write(size.toString(8).padStart(11, '0') + '\0', 124, 12, 'latin1')
  b.write('00000000000\0', 136, 12, 'latin1')
  b.write(flag, 156, 1, 'latin1')
  b.write('ustar\x0000', 257, 8, 'latin1')
  b.fill(0x20, 148, 156)
  let sum = 0
  for (const x of b) sum += x
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1')
  return b
}

export async function * chunksOf (data: Uint8Array, size = 7919): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.byteLength; i += size) yield data.subarray(i, i + size)
}

/** path -> "type:content" for every entry under dir, for before/after comparison. */
export function snapshot (dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const path = rel === '' ? name : `${rel}/${name}`
      const full = join(dir, path)
      const st = lstatSync(full)
      if (st.isDirectory()) { out[path] = `dir:${(st.mode & 0o7777).toString(8)}`; walk(path) } else if (st.isSymbolicLink()) out[path] = `link:${readlinkSync(full)}`
      else if (st.isFile()) out[path] = `file:${(st.mode & 0o7777).toString(8)}:${readFileSync(full, 'utf8')}`
      else out[path] = 'other'
    }
  }
  walk('')
  return out
}

export async function collect (source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const c of source) chunks.push(c)
  return Buffer.concat(chunks)
}

export interface TestImage {
  manifest: Descriptor
  config: Descriptor
  layers: Descriptor[]
}

/** Makes a two-layer image in the store: layer 1 has files a and dir/b, layer 2 deletes a and adds c. */
export async function makeImage (store: ContentStore, label = 'x', platform = { os: 'linux', architecture: 'amd64' }): Promise<TestImage> {
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
  const l1 = await oci.writeLayer(store, [
    { type: 'file', path: 'a', mode: 0o644, content: enc(`a-${label}`) },
    { type: 'directory', path: 'dir', mode: 0o755 },
    { type: 'file', path: 'dir/b', mode: 0o600, content: enc('b') }
  ], { compression: 'gzip', sourceDateEpoch: 0 })
  const l2 = await oci.writeLayer(store, [
    { type: 'whiteout', path: 'a' },
    { type: 'file', path: 'c', mode: 0o755, content: enc(`c-${label}`) }
  ], { compression: 'zstd', sourceDateEpoch: 0 })
  const configBytes = oci.encodeJson({ ...platform, config: { Env: ['PATH=/bin'] }, rootfs: { type: 'layers', diff_ids: [l1.diffId, l2.diffId] } })
  const configInfo = await store.ingest(configBytes)
  const config = { mediaType: oci.OCI_CONFIG, digest: configInfo.digest, size: configInfo.size }
  const layers = [l1.descriptor, l2.descriptor]
  const manifestBytes = oci.encodeJson({ schemaVersion: 2, mediaType: oci.OCI_MANIFEST, config, layers })
  const m = await store.ingest(manifestBytes)
  return { manifest: { mediaType: oci.OCI_MANIFEST, digest: m.digest, size: m.size }, config, layers }
}

export async function blobCount (store: ContentStore): Promise<number> {
  let n = 0
  for await (const _ of store.walk()) n++
  return n
}
