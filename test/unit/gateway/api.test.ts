import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { blob, makeGateway, pushImage, testImage } from './helpers.ts'
import type { TestGateway } from './helpers.ts'

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'

describe('gateway pull and push (in-process)', () => {
  let t: TestGateway
  beforeEach(async () => { t = await makeGateway() })
  afterEach(async () => { await t.cleanup() })

  it('answers /v2/ and 404s unknown paths', async () => {
    const r = await t.inject('GET', '/v2/')
    expect(r.status).toBe(200)
    expect(r.headers['docker-distribution-api-version']).toBe('registry/2.0')
    expect((await t.inject('GET', '/nope')).status).toBe(404)
  })

  it('pushes an image and pulls it back by tag and digest', async () => {
    const img = testImage()
    const put = await pushImage(t, 'hpc/app', img, 'v1')
    expect(put.status).toBe(201)
    expect(put.headers['docker-content-digest']).toBe(img.manifest.digest)
    expect(put.headers.location).toBe(`/v2/hpc/app/manifests/${img.manifest.digest}`)

    for (const ref of ['v1', img.manifest.digest]) {
      const get = await t.inject('GET', `/v2/hpc/app/manifests/${ref}`)
      expect(get.status).toBe(200)
      expect(get.headers['content-type']).toBe(OCI_MANIFEST)
      expect(get.headers['docker-content-digest']).toBe(img.manifest.digest)
      expect(get.body.equals(img.manifest.bytes)).toBe(true)
    }
    const head = await t.inject('HEAD', `/v2/hpc/app/manifests/v1`)
    expect(head.headers['content-length']).toBe(String(img.manifest.bytes.byteLength))
    expect(head.body.byteLength).toBe(0)

    const layer = await t.inject('GET', `/v2/hpc/app/blobs/${img.layer.digest}`)
    expect(layer.status).toBe(200)
    expect(layer.body.equals(img.layer.bytes)).toBe(true)
    expect(layer.headers['docker-content-digest']).toBe(img.layer.digest)
    // The tag is a ref in the shared store, so `kiln image ls` sees it.
    expect(t.refs.get('hpc/app', 'v1').digest).toBe(img.manifest.digest)
  })

  it('serves byte ranges and refuses unsatisfiable ones with 416', async () => {
    const b = blob('0123456789')
    await t.inject('POST', `/v2/r/blobs/uploads/?digest=${b.digest}`, { body: b.bytes })
    const part = await t.inject('GET', `/v2/r/blobs/${b.digest}`, { headers: { range: 'bytes=2-5' } })
    expect(part.status).toBe(206)
    expect(part.body.toString()).toBe('2345')
    expect(part.headers['content-range']).toBe('bytes 2-5/10')
    const suffix = await t.inject('GET', `/v2/r/blobs/${b.digest}`, { headers: { range: 'bytes=-3' } })
    expect(suffix.body.toString()).toBe('789')
    const bad = await t.inject('GET', `/v2/r/blobs/${b.digest}`, { headers: { range: 'bytes=20-30' } })
    expect(bad.status).toBe(416)
    expect(bad.headers['content-range']).toBe('bytes */10')
  })

  it('keeps blobs per repository and mounts across repositories', async () => {
    const b = blob('shared')
    await t.inject('POST', `/v2/one/blobs/uploads/?digest=${b.digest}`, { body: b.bytes })
    const other = await t.inject('GET', `/v2/two/blobs/${b.digest}`)
    expect(other.status).toBe(404)
    expect(other.json()).toMatchObject({ errors: [{ code: 'BLOB_UNKNOWN' }] })
    const mount = await t.inject('POST', `/v2/two/blobs/uploads/?mount=${b.digest}&from=one`)
    expect(mount.status).toBe(201)
    expect(mount.headers.location).toBe(`/v2/two/blobs/${b.digest}`)
    expect((await t.inject('HEAD', `/v2/two/blobs/${b.digest}`)).status).toBe(200)
    const noFrom = await t.inject('POST', `/v2/three/blobs/uploads/?mount=${b.digest}&from=nowhere`)
    expect(noFrom.status).toBe(202)
  })

  it('refuses a manifest whose blobs are missing, and a digest that does not match', async () => {
    const img = testImage('b')
    const r = await t.inject('PUT', '/v2/x/manifests/v1', { body: img.manifest.bytes, headers: { 'content-type': OCI_MANIFEST } })
    expect(r.status).toBe(400)
    expect(r.json()).toMatchObject({ errors: [{ code: 'MANIFEST_BLOB_UNKNOWN', detail: { digest: img.config.digest } }] })
    const wrong = await pushImage(t, 'x', img, testImage('c').manifest.digest)
    expect(wrong.status).toBe(400)
    expect(wrong.json()).toMatchObject({ errors: [{ code: 'DIGEST_INVALID' }] })
    const junk = await t.inject('PUT', '/v2/x/manifests/v1', { body: '{"schemaVersion":2}', headers: { 'content-type': OCI_MANIFEST } })
    expect(junk.json()).toMatchObject({ errors: [{ code: 'MANIFEST_INVALID' }] })
  })

  it('checks index children and serves the amd64 image to clients that do not take lists', async () => {
    const amd = testImage('amd64')
    const arm = testImage('arm64')
    await pushImage(t, 'multi', amd, amd.manifest.digest)
    const index = blob(JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        { mediaType: OCI_MANIFEST, digest: arm.manifest.digest, size: arm.manifest.bytes.byteLength, platform: { os: 'linux', architecture: 'arm64' } },
        { mediaType: OCI_MANIFEST, digest: amd.manifest.digest, size: amd.manifest.bytes.byteLength, platform: { os: 'linux', architecture: 'amd64' } }
      ]
    }))
    const missing = await t.inject('PUT', '/v2/multi/manifests/latest', { body: index.bytes, headers: { 'content-type': OCI_INDEX } })
    expect(missing.json()).toMatchObject({ errors: [{ code: 'MANIFEST_BLOB_UNKNOWN', detail: { digest: arm.manifest.digest } }] })
    await pushImage(t, 'multi', arm, arm.manifest.digest)
    expect((await t.inject('PUT', '/v2/multi/manifests/latest', { body: index.bytes, headers: { 'content-type': OCI_INDEX } })).status).toBe(201)

    const modern = await t.inject('GET', '/v2/multi/manifests/latest', { headers: { accept: `${OCI_MANIFEST}, ${OCI_INDEX}` } })
    expect(modern.headers['docker-content-digest']).toBe(index.digest)
    const old = await t.inject('GET', '/v2/multi/manifests/latest', { headers: { accept: OCI_MANIFEST } })
    expect(old.headers['docker-content-digest']).toBe(amd.manifest.digest)
  })

  it('deletes tags, manifests and blobs, and says UNSUPPORTED when deletion is off', async () => {
    const img = testImage()
    await pushImage(t, 'd', img, 'v1')
    expect((await t.inject('DELETE', '/v2/d/manifests/v1')).status).toBe(202)
    expect((await t.inject('GET', '/v2/d/manifests/v1')).status).toBe(404)
    expect((await t.inject('GET', `/v2/d/manifests/${img.manifest.digest}`)).status).toBe(200)
    expect((await t.inject('DELETE', `/v2/d/manifests/${img.manifest.digest}`)).status).toBe(202)
    expect((await t.inject('GET', `/v2/d/manifests/${img.manifest.digest}`)).status).toBe(404)
    expect((await t.inject('DELETE', `/v2/d/blobs/${img.layer.digest}`)).status).toBe(202)
    expect((await t.inject('GET', `/v2/d/blobs/${img.layer.digest}`)).status).toBe(404)

    const ro = await makeGateway({ deleteEnabled: false })
    try {
      await pushImage(ro, 'd', img, 'v1')
      const r = await ro.inject('DELETE', '/v2/d/manifests/v1')
      expect(r.status).toBe(405)
      expect(r.json()).toMatchObject({ errors: [{ code: 'UNSUPPORTED' }] })
    } finally { await ro.cleanup() }
  })

  it('validates names and digests', async () => {
    const r = await t.inject('GET', '/v2/Bad_Name/tags/list')
    expect(r.status).toBe(400)
    expect(r.json()).toMatchObject({ errors: [{ code: 'NAME_INVALID' }] })
    const d = await t.inject('GET', '/v2/ok/blobs/sha256:nothex')
    expect(d.json()).toMatchObject({ errors: [{ code: 'DIGEST_INVALID' }] })
    expect((await t.inject('GET', '/v2/ok/tags/list')).json()).toMatchObject({ errors: [{ code: 'NAME_UNKNOWN' }] })
  })

  it('serves images that other kiln commands put in the store', async () => {
    const img = testImage('local')
    for (const b of [img.config, img.layer, img.manifest]) await t.store.ingest(b.bytes, { digest: b.digest })
    t.refs.set('local/base', 'v1', { digest: img.manifest.digest, mediaType: OCI_MANIFEST, size: img.manifest.bytes.byteLength })
    expect((await t.inject('GET', `/v2/local/base/blobs/${img.layer.digest}`)).status).toBe(200)
    expect((await t.inject('GET', '/v2/local/base/manifests/v1')).status).toBe(200)
  })

  it('serves a short local name under the names containerd and podman ask for through the mirror', async () => {
    const img = testImage('short')
    for (const b of [img.config, img.layer, img.manifest]) await t.store.ingest(b.bytes, { digest: b.digest })
    t.refs.set('shortname', 'latest', { digest: img.manifest.digest, mediaType: OCI_MANIFEST, size: img.manifest.bytes.byteLength })
    for (const path of ['/v2/shortname/manifests/latest', '/v2/library/shortname/manifests/latest?ns=docker.io', '/v2/docker.io/library/shortname/manifests/latest']) {
      const r = await t.inject('GET', path)
      expect(r.status, path).toBe(200)
      expect(r.headers['docker-content-digest']).toBe(img.manifest.digest)
    }
    expect((await t.inject('GET', `/v2/library/shortname/blobs/${img.layer.digest}?ns=docker.io`)).status).toBe(200)
    expect((await t.inject('GET', '/v2/library/shortname/tags/list?ns=docker.io')).json()).toMatchObject({ tags: ['latest'] })
    expect((await t.inject('GET', '/v2/other/shortname/manifests/latest')).status).toBe(404)
  })

  it('pulls through from the network what the store lacks', async () => {
    const b = blob('from-a-peer')
    const remote = await makeGateway({
      pullThrough: {
        fetchBlob: async (d) => { if (d !== b.digest) return false; await remote.store.ingest(b.bytes, { digest: d }); return true },
        resolveTag: async () => undefined
      }
    })
    try {
      expect((await remote.inject('GET', `/v2/any/blobs/${b.digest}`)).body.toString()).toBe('from-a-peer')
      expect((await remote.inject('GET', `/v2/any/blobs/${blob('nobody').digest}`)).status).toBe(404)
    } finally { await remote.cleanup() }
  })
})

describe('gateway GC roots and mirror mode', () => {
  it('reports pushed digests as GC roots and ignores containerd\'s ns= parameter', async () => {
    const { gatewayGcRoots } = await import('../../../src/gateway/index.ts')
    const t = await makeGateway()
    try {
      const img = testImage('roots')
      await pushImage(t, 'library/busybox', img, img.manifest.digest)
      expect(gatewayGcRoots(t.db).sort()).toEqual([img.config.digest, img.layer.digest, img.manifest.digest].sort())
      const r = await t.inject('GET', `/v2/library/busybox/manifests/${img.manifest.digest}?ns=docker.io`)
      expect(r.status).toBe(200)
    } finally { await t.cleanup() }
  })
})
