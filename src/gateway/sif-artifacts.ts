/**
 * Every image the gateway serves is also a SIF, as an ORAS artifact
 * (docs/gateway.md §"SIF"), so that `apptainer pull oras://GW/REPO:TAG.sif`
 * gets a file Apptainer runs with no conversion on the client.
 *
 * Terms (SIF tag, subject, SIF artifact) are src/sif's (oras-artifact.ts),
 * which also makes the artifact's bytes. A real tag `<tag>.sif` (a SIF
 * pushed with `oras push` or `apptainer push`) wins: this module only
 * answers a SIF tag that names nothing.
 *
 * Made once: the SIF and its manifest go into the store and the repository
 * index; later requests find the artifact among the
 * image's referrers (by the SOURCE_ANNOTATION kiln puts on it) and serve it
 * from there. Concurrent first requests for one image share one export.
 */
import { mkdir, mkdtemp } from 'node:fs/promises'
import { join } from 'node:path'
import type { Digest } from '../content/digest.ts'
import { sha256Digest } from '../content/digest.ts'
import type { Descriptor } from '../oci/index.ts'
import { OCI_MANIFEST, PlatformNotFoundError, parseManifestBytes } from '../oci/index.ts'
import {
  SIF_ARTIFACT_CONFIG, SIF_CONFIG_MEDIA_TYPE, SIF_LAYER_TITLE, SIF_TAG_SUFFIX, SOURCE_ANNOTATION, sifArtifactManifest, sifArtifactSubject, writeArtifactSif
} from '../sif/index.ts'
import { removeTree } from '../util/fs.ts'
import { isErrorOf } from '../util/error-class.ts'
import { recordManifest } from './context.ts'
import type { GatewayContext } from './context.ts'
import { RegistryApiError } from './errors.ts'
import type { ManifestRecord } from './repo-index.ts'

export interface SifArtifacts {
  /**
   * The SIF artifact of an image of the repository, made and recorded when
   * missing. Throws RegistryApiError MANIFEST_UNKNOWN for an index without a
   * host-platform image; src/oci's and src/sif's errors otherwise.
   */
  forImage: (ctx: GatewayContext, repository: string, image: ManifestRecord) => Promise<ManifestRecord>
}

/** The image tag a SIF tag stands for, or undefined when param is not a SIF tag. */
export function imageTagOfSifTag (param: string): string | undefined {
  if (!param.endsWith(SIF_TAG_SUFFIX) || param.length === SIF_TAG_SUFFIX.length) return undefined
  return param.slice(0, -SIF_TAG_SUFFIX.length)
}

function cached (ctx: GatewayContext, repository: string, image: Digest): ManifestRecord | undefined {
  return ctx.index.referrers(repository, image)
    .find(r => r.artifactType === SIF_CONFIG_MEDIA_TYPE && r.annotations?.[SOURCE_ANNOTATION] === image)
}

async function make (ctx: GatewayContext, repository: string, image: Descriptor, workDir: string): Promise<ManifestRecord> {
  await mkdir(workDir, { recursive: true })
  const tmp = await mkdtemp(join(workDir, 'sif-'))
  try {
    const file = join(tmp, SIF_LAYER_TITLE)
    await writeArtifactSif(ctx.store, image, file, { tmpDir: tmp })
    const layer = await ctx.store.ingestFile(file)
    await ctx.store.ingest(SIF_ARTIFACT_CONFIG, { digest: sha256Digest(SIF_ARTIFACT_CONFIG), size: SIF_ARTIFACT_CONFIG.byteLength })
    const bytes = sifArtifactManifest(image, layer)
    const digest = sha256Digest(bytes)
    await ctx.store.ingest(bytes, { digest, size: bytes.byteLength })
    const record = recordManifest(ctx, repository, digest, bytes.byteLength, parseManifestBytes(bytes, OCI_MANIFEST))
    ctx.logger.info({ repository, image: image.digest, digest, sif: layer.digest, size: layer.size }, 'SIF artifact made')
    return record
  } finally {
    await removeTree(tmp)
  }
}

/** workDir: where SIFs are made before they are moved into the store (best on the store's filesystem). */
export function createSifArtifacts (workDir: string): SifArtifacts {
  const inFlight = new Map<string, Promise<ManifestRecord>>()
  return {
    forImage: async (ctx, repository, image) => {
      let single: Descriptor
      try {
        single = await sifArtifactSubject(ctx.store, image)
      } catch (err) {
        if (!isErrorOf(err, PlatformNotFoundError)) throw err
        throw new RegistryApiError('MANIFEST_UNKNOWN', `no SIF: ${(err as Error).message}`, { detail: { digest: image.digest } })
      }
      const hit = cached(ctx, repository, single.digest)
      if (hit !== undefined) return hit
      const key = `${repository}@${single.digest}`
      let pending = inFlight.get(key)
      if (pending === undefined) {
        pending = make(ctx, repository, single, workDir).finally(() => inFlight.delete(key))
        inFlight.set(key, pending)
      }
      return await pending
    }
  }
}
