/**
 * A SIF as a base image: its primary squashfs partition unpacked with
 * unsquashfs (in place, at its offset in the file) and written into the
 * store as a single-layer OCI image. The layer is kiln's deterministic one
 * (src/oci writeLayer), so the same SIF gives the same manifest digest.
 *
 * The config carries the partition's architecture, Apptainer's default PATH
 * and the labels of `/.singularity.d/labels.json`; the rest of Apptainer's
 * metadata stays in the filesystem, where Apptainer and a later SIF export
 * read it.
 */
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'
import type { Ingester } from '../content/index.ts'
import { OCI_CONFIG, OCI_MANIFEST, encodeJson, writeLayerFromDir } from '../oci/index.ts'
import type { Descriptor, ImageConfig } from '../oci/index.ts'
import { removeTree } from '../util/fs.ts'
import { primaryPartition, readSif } from './read.ts'
import { unpackSquashfs } from './squashfs.ts'

/** What Apptainer puts first on PATH when an image sets none. */
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
const MAX_LABELS_FILE = 1024 * 1024
const Labels = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]))

export interface SifImportOptions {
  /** Where the partition is unpacked; default os.tmpdir(). */
  tmpDir?: string
  /** Mtime clamp of the layer, as writeLayer's; default $SOURCE_DATE_EPOCH, else 0. */
  sourceDateEpoch?: number
  signal?: AbortSignal
}

export interface ImportedSif {
  /** The single-platform manifest in the store. */
  descriptor: Descriptor
  /** unsquashfs's complaints about files it could not make (device nodes). */
  warnings: string[]
}

async function labelsOf (root: string): Promise<Record<string, string>> {
  const text = await readFile(join(root, '.singularity.d', 'labels.json'), 'utf8').catch(() => undefined)
  if (text === undefined || text.length > MAX_LABELS_FILE) return {}
  let json: unknown
  try { json = JSON.parse(text) } catch { return {} }
  const r = Labels.safeParse(json)
  return r.success ? Object.fromEntries(Object.entries(r.data).map(([k, v]) => [k, String(v)])) : {}
}

/** Reads the SIF at path into the store. Throws SifInvalidError, SifNoRootPartitionError, SquashfsToolError. */
export async function importSif (store: Ingester, path: string, options: SifImportOptions = {}): Promise<ImportedSif> {
  const sif = await readSif(path)
  const root = primaryPartition(sif)
  const tmp = await mkdtemp(join(options.tmpDir ?? tmpdir(), 'kiln-sif-'))
  try {
    const rootfs = join(tmp, 'rootfs')
    const warnings = await unpackSquashfs(path, root.offset, rootfs, options.signal)
    const layer = await writeLayerFromDir(store, rootfs, {
      ...(options.sourceDateEpoch === undefined ? {} : { sourceDateEpoch: options.sourceDateEpoch }),
      ...(options.signal === undefined ? {} : { signal: options.signal })
    })
    const labels = await labelsOf(rootfs)
    const arch = root.partition?.arch ?? sif.header.arch
    const config: ImageConfig = {
      architecture: arch === 'unknown' ? sif.header.arch : arch,
      os: 'linux',
      config: { Env: [DEFAULT_PATH], ...(Object.keys(labels).length === 0 ? {} : { Labels: labels }) },
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      history: [{ created_by: `kiln: SIF ${sif.header.id}`, comment: 'imported from the primary partition of a SIF image' }]
    }
    const configBytes = encodeJson(config)
    const configInfo = await store.ingest(configBytes)
    const manifest = encodeJson({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: configInfo.digest, size: configInfo.size },
      layers: [layer.descriptor]
    })
    const info = await store.ingest(manifest)
    return { descriptor: { mediaType: OCI_MANIFEST, digest: info.digest, size: info.size }, warnings }
  } finally {
    await removeTree(tmp)
  }
}
