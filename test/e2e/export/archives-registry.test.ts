/**
 * Real consumers of kiln's outputs: skopeo reads the docker-archive and the
 * oci-archive, and an image pushed to Debian's docker-registry (distribution
 * 2.8) on loopback is inspected there by skopeo, by tag and by digest.
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ContentStore } from '../../../src/content/index.ts'
import { createExporter, parseOutputSpec } from '../../../src/export/index.ts'
import { haveTools } from '../../helpers/tools.ts'
import { startDockerRegistry } from '../../integration/registry/docker-registry.ts'
import type { DockerRegistry } from '../../integration/registry/docker-registry.ts'
import { makeMultiArch, makeStore, tempDirs } from '../../unit/export/helpers.ts'

const run = promisify(execFile)
const skopeo = async (...args: string[]): Promise<string> => (await run('skopeo', args, { timeout: 60_000 })).stdout
interface Inspect { Digest: string, Architecture: string, Layers: string[], RepoTags?: string[] }

describe.skipIf(!haveTools('skopeo'))('archives read by skopeo', () => {
  const dirs = tempDirs()
  let store: ContentStore
  let image: Awaited<ReturnType<typeof makeMultiArch>>
  beforeAll(async () => { store = await makeStore(dirs); image = await makeMultiArch(store) })
  afterAll(() => { dirs.cleanup() })

  it('docker-archive: skopeo inspects it by its RepoTag and copies it to an OCI layout', async () => {
    const file = join(dirs.make(), 'img.tar')
    await createExporter().export({ store, root: image.index }, parseOutputSpec(`type=docker-archive,dest=${file},name=hpc/app:1,platform=linux/arm64`))
    const inspect = JSON.parse(await skopeo('inspect', `docker-archive:${file}:hpc/app:1`)) as Inspect
    expect(inspect.Architecture).toBe('arm64')
    expect(inspect.Layers).toEqual([image.arm64.diffId]) // uncompressed: the layer is its diffID
    const out = join(dirs.make(), 'oci')
    await skopeo('copy', `docker-archive:${file}`, `oci:${out}:copied`)
    const config = JSON.parse(await skopeo('inspect', '--config', `oci:${out}:copied`)) as { rootfs: { diff_ids: string[] } }
    expect(config.rootfs.diff_ids).toEqual([image.arm64.diffId])
  })

  it('oci-archive: skopeo reads the multi-arch index by its name', async () => {
    const file = join(dirs.make(), 'img.tar')
    await createExporter().export({ store, root: image.index }, parseOutputSpec(`oci-archive:${file}:v1`))
    const raw = JSON.parse(await skopeo('inspect', '--raw', `oci-archive:${file}:v1`)) as { manifests: Array<{ digest: string }> }
    expect(raw.manifests.map(m => m.digest)).toEqual([image.amd64.manifest.digest, image.arm64.manifest.digest])
  })
})

describe.skipIf(!haveTools('skopeo', 'docker-registry'))('registry exporter against docker-registry', () => {
  const dirs = tempDirs()
  let store: ContentStore
  let image: Awaited<ReturnType<typeof makeMultiArch>>
  let registry: DockerRegistry
  beforeAll(async () => {
    store = await makeStore(dirs)
    image = await makeMultiArch(store)
    registry = await startDockerRegistry()
  })
  afterAll(async () => {
    await registry?.stop()
    dirs.cleanup()
  })

  it('pushes a two-platform index under two tags; skopeo sees both platforms', async () => {
    const blobs: string[] = []
    const r = await createExporter().export({ store, root: image.index }, parseOutputSpec(`docker://${registry.hostPort}/hpc/app:1.0`), {
      onProgress: e => { if (e.event === 'blob' && e.digest !== undefined) blobs.push(e.digest) }
    })
    expect(r).toEqual({ description: `docker://${registry.hostPort}/hpc/app:1.0@${image.index.digest}`, digest: image.index.digest })
    expect(blobs.sort()).toEqual([image.amd64.config.digest, image.amd64.layer.digest, image.arm64.config.digest, image.arm64.layer.digest].sort())
    const raw = JSON.parse(await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${registry.hostPort}/hpc/app:1.0`)) as { manifests: unknown[] }
    expect(raw.manifests).toHaveLength(2)
    const arm = JSON.parse(await skopeo('inspect', '--tls-verify=false', '--override-arch', 'arm64', `docker://${registry.hostPort}/hpc/app@${image.index.digest}`)) as Inspect
    // skopeo reports the digest of what was named (the index) and the config of the platform it chose.
    expect(arm).toMatchObject({ Digest: image.index.digest, Architecture: 'arm64', Layers: [image.arm64.layer.digest] })
    await createExporter().export({ store, root: image.index }, parseOutputSpec(`type=registry,name=${registry.hostPort}/hpc/app:latest`))
    const tags = JSON.parse(await skopeo('list-tags', '--tls-verify=false', `docker://${registry.hostPort}/hpc/app`)) as { Tags: string[] }
    expect(tags.Tags.sort()).toEqual(['1.0', 'latest'])
  })
})
