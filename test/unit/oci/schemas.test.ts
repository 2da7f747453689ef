import { describe, expect, it } from 'vitest'
import { sha256Digest } from '../../../src/content/index.ts'
import {
  DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MAX_MANIFEST_SIZE, OCI_CONFIG, OCI_INDEX, OCI_LAYER_TAR_GZIP, OCI_MANIFEST,
  isIndex, isLayer, isManifest, layerCompression, parseConfigBytes, parseManifestBytes
} from '../../../src/oci/index.ts'

const enc = (v: unknown): Uint8Array => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v))
const d1 = sha256Digest('config')
const d2 = sha256Digest('layer')

const manifest = {
  schemaVersion: 2,
  mediaType: OCI_MANIFEST,
  config: { mediaType: OCI_CONFIG, digest: d1, size: 6 },
  layers: [{ mediaType: OCI_LAYER_TAR_GZIP, digest: d2, size: 5, annotations: { a: 'b' } }],
  annotations: { 'org.example': 'x' },
  futureField: { kept: true }
}

function errorOf (fn: () => unknown): Error {
  try { fn() } catch (err) { return err as Error }
  throw new Error('expected a throw')
}

describe('media types', () => {
  it('classifies', () => {
    expect(isIndex(OCI_INDEX)).toBe(true)
    expect(isIndex(DOCKER_MANIFEST_LIST)).toBe(true)
    expect(isManifest(DOCKER_MANIFEST)).toBe(true)
    expect(isManifest(OCI_INDEX)).toBe(false)
    expect(isLayer(OCI_LAYER_TAR_GZIP)).toBe(true)
    expect(isLayer(OCI_CONFIG)).toBe(false)
    expect(layerCompression('application/vnd.docker.image.rootfs.diff.tar.gzip')).toBe('gzip')
    expect(layerCompression('application/vnd.oci.image.layer.v1.tar+zstd')).toBe('zstd')
  })
})

describe('parseManifestBytes', () => {
  it('parses an OCI manifest and keeps unknown fields', () => {
    const p = parseManifestBytes(enc(manifest))
    expect(p.kind).toBe('manifest')
    expect(p.mediaType).toBe(OCI_MANIFEST)
    if (p.kind !== 'manifest') throw new Error('kind')
    expect(p.value.layers[0]?.digest).toBe(d2)
    expect((p.value as Record<string, unknown>).futureField).toEqual({ kept: true })
  })

  it('parses an index without mediaType by its fields, and a docker list by mediaType', () => {
    const idx = { schemaVersion: 2, manifests: [{ mediaType: OCI_MANIFEST, digest: d1, size: 10, platform: { os: 'linux', architecture: 'amd64' } }] }
    expect(parseManifestBytes(enc(idx)).kind).toBe('index')
    expect(parseManifestBytes(enc({ ...idx, mediaType: DOCKER_MANIFEST_LIST })).mediaType).toBe(DOCKER_MANIFEST_LIST)
    const { mediaType: _m, ...bare } = manifest
    expect(parseManifestBytes(enc(bare)).kind).toBe('manifest')
    expect(parseManifestBytes(enc(bare), DOCKER_MANIFEST).mediaType).toBe(DOCKER_MANIFEST)
  })

  it.each([
    ['not JSON', enc('{nope'), /not JSON/],
    ['not an object', enc('[1]'), /not a JSON object/],
    ['schema 1', enc({ ...manifest, schemaVersion: 1 }), /schemaVersion 1/],
    ['bad digest', enc({ ...manifest, layers: [{ mediaType: OCI_LAYER_TAR_GZIP, digest: 'sha256:XYZ', size: 1 }] }), /layers\[0\]\.digest: invalid digest/],
    ['negative size', enc({ ...manifest, config: { ...manifest.config, size: -1 } }), /config\.size/],
    ['unknown mediaType', enc({ ...manifest, mediaType: 'text/plain' }), /neither an image manifest nor an index/],
    ['ambiguous', enc({ schemaVersion: 2 }), /cannot tell/],
    ['invalid utf-8', new Uint8Array([0xff, 0xfe]), /UTF-8/]
  ])('refuses %s with ManifestInvalidError', (_name, bytes, re) => {
    const err = errorOf(() => parseManifestBytes(bytes))
    expect(err.name).toBe('ManifestInvalidError')
    expect(err.message).toMatch(re)
  })

  it('refuses a mediaType that contradicts the declared one', () => {
    expect(errorOf(() => parseManifestBytes(enc(manifest), OCI_INDEX)).name).toBe('ManifestInvalidError')
  })

  it('refuses manifests over the size limit', () => {
    const big = new Uint8Array(MAX_MANIFEST_SIZE + 1).fill(0x20)
    expect(errorOf(() => parseManifestBytes(big)).name).toBe('ManifestTooLargeError')
  })
})

describe('parseConfigBytes', () => {
  it('parses docker-style configs with nulls', () => {
    const cfg = parseConfigBytes(enc({
      architecture: 'amd64', os: 'linux',
      config: { Env: ['PATH=/bin'], Cmd: null, Entrypoint: ['/bin/sh'], Labels: null, ExposedPorts: { '80/tcp': {} }, WorkingDir: '/' },
      rootfs: { type: 'layers', diff_ids: [d1] },
      history: [{ created_by: 'x', empty_layer: true }]
    }))
    expect(cfg.rootfs.diff_ids).toEqual([d1])
    expect(cfg.config?.Entrypoint).toEqual(['/bin/sh'])
  })

  it('names the wrong field', () => {
    const err = errorOf(() => parseConfigBytes(enc({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: ['md5:1'] } })))
    expect(err.name).toBe('ConfigInvalidError')
    expect(err.message).toMatch(/rootfs\.diff_ids\[0\]/)
  })
})
