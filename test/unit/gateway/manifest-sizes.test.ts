/**
 * A pushed manifest's descriptors must give the stored sizes: a wrong size
 * for a config, a layer or an index child is MANIFEST_INVALID (400) and
 * nothing is stored; an unknown digest stays MANIFEST_BLOB_UNKNOWN.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { blob, makeGateway, pushImage, testImage } from './helpers.ts'
import type { TestGateway, TestImage } from './helpers.ts'

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'

/** The image's manifest with the config's or the first layer's size changed by `delta`. */
function withSize (img: TestImage, which: 'config' | 'layer', delta: number): { bytes: Buffer, digest: string } {
  const m = JSON.parse(img.manifest.bytes.toString()) as { config: { size: number }, layers: Array<{ size: number }> }
  if (which === 'config') m.config.size += delta
  else (m.layers[0] as { size: number }).size += delta
  return blob(JSON.stringify(m))
}

function indexOf (children: Array<{ digest: string, size: number }>): { bytes: Buffer, digest: string } {
  return blob(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: children.map(c => ({ mediaType: OCI_MANIFEST, ...c, platform: { os: 'linux', architecture: 'amd64' } }))
  }))
}

describe('manifest descriptor sizes (in-process)', () => {
  let t: TestGateway
  beforeEach(async () => { t = await makeGateway() })
  afterEach(async () => { await t.cleanup() })

  const put = async (reference: string, body: Buffer, mediaType = OCI_MANIFEST): ReturnType<TestGateway['inject']> =>
    await t.inject('PUT', `/v2/sizes/manifests/${reference}`, { body, headers: { 'content-type': mediaType } })

  it('refuses a config or layer whose size is not the stored one, and stores nothing', async () => {
    const img = testImage('sizes')
    expect((await pushImage(t, 'sizes', img, 'ok')).status).toBe(201)
    for (const [which, delta] of [['config', 1], ['config', -1], ['layer', 1], ['layer', -3]] as const) {
      const bad = withSize(img, which, delta)
      const r = await put('bad', bad.bytes)
      expect(r.status, `${which} ${delta}`).toBe(400)
      const digest = which === 'config' ? img.config.digest : img.layer.digest
      const stored = which === 'config' ? img.config.bytes.byteLength : img.layer.bytes.byteLength
      expect(r.json()).toMatchObject({ errors: [{ code: 'MANIFEST_INVALID', detail: { digest, size: stored + delta, stored } }] })
      expect(await t.store.has(bad.digest as `sha256:${string}`)).toBe(false)
      expect((await t.inject('GET', `/v2/sizes/manifests/${bad.digest}`)).status).toBe(404)
    }
    expect((await t.inject('GET', '/v2/sizes/manifests/bad')).status).toBe(404)
  })

  it('refuses an index child whose size is not the stored manifest\'s', async () => {
    const img = testImage('child')
    expect((await pushImage(t, 'sizes', img, img.manifest.digest)).status).toBe(201)
    const size = img.manifest.bytes.byteLength
    for (const wrong of [size + 1, size - 1]) {
      const index = indexOf([{ digest: img.manifest.digest, size: wrong }])
      const r = await put('multi', index.bytes, OCI_INDEX)
      expect(r.status).toBe(400)
      expect(r.json()).toMatchObject({ errors: [{ code: 'MANIFEST_INVALID', detail: { digest: img.manifest.digest, size: wrong, stored: size } }] })
      expect(await t.store.has(index.digest as `sha256:${string}`)).toBe(false)
    }
    expect((await put('multi', indexOf([{ digest: img.manifest.digest, size }]).bytes, OCI_INDEX)).status).toBe(201)
  })

  it('still answers MANIFEST_BLOB_UNKNOWN for a digest the repository lacks, whatever its size', async () => {
    const img = testImage('absent')
    const r = await put('absent', img.manifest.bytes)
    expect(r.status).toBe(400)
    expect(r.json()).toMatchObject({ errors: [{ code: 'MANIFEST_BLOB_UNKNOWN', detail: { digest: img.config.digest } }] })
    const child = testImage('no-child')
    const index = await put('multi', indexOf([{ digest: child.manifest.digest, size: child.manifest.bytes.byteLength }]).bytes, OCI_INDEX)
    expect(index.json()).toMatchObject({ errors: [{ code: 'MANIFEST_BLOB_UNKNOWN', detail: { digest: child.manifest.digest } }] })
  })
})
