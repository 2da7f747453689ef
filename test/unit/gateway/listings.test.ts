import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { blob, makeGateway, pushImage, testImage } from './helpers.ts'
import type { TestGateway } from './helpers.ts'

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'

describe('gateway lists and uploads (in-process)', () => {
  let t: TestGateway
  beforeEach(async () => { t = await makeGateway() })
  afterEach(async () => { await t.cleanup() })

  it('pages tags with n and last and a Link header', async () => {
    const img = testImage()
    for (const tag of ['c', 'a', 'b', 'd']) await pushImage(t, 'p', img, tag)
    const first = await t.inject('GET', '/v2/p/tags/list?n=2')
    expect(first.json()).toEqual({ name: 'p', tags: ['a', 'b'] })
    expect(first.headers.link).toBe('</v2/p/tags/list?n=2&last=b>; rel="next"')
    const second = await t.inject('GET', '/v2/p/tags/list?n=2&last=b')
    expect(second.json()).toEqual({ name: 'p', tags: ['c', 'd'] })
    expect(second.headers.link).toBeUndefined()
    expect((await t.inject('GET', '/v2/p/tags/list?n=0')).json()).toEqual({ name: 'p', tags: [] })
    expect((await t.inject('GET', '/v2/_catalog')).json()).toEqual({ repositories: ['p'] })
  })

  it('indexes referrers, filters by artifactType and answers OCI-Subject', async () => {
    const img = testImage()
    await pushImage(t, 'r', img, 'v1')
    const subject = { mediaType: OCI_MANIFEST, digest: img.manifest.digest, size: img.manifest.bytes.byteLength }
    const sig = testImage('sig', { artifactType: 'application/vnd.example.sig', subject, annotations: { who: 'me' } })
    const sbom = testImage('sbom', { artifactType: 'application/spdx+json', subject })
    const put = await pushImage(t, 'r', sig, sig.manifest.digest)
    expect(put.headers['oci-subject']).toBe(img.manifest.digest)
    await pushImage(t, 'r', sbom, sbom.manifest.digest)

    const all = await t.inject('GET', `/v2/r/referrers/${img.manifest.digest}`)
    expect(all.headers['content-type']).toBe('application/vnd.oci.image.index.v1+json')
    const list = all.json() as { manifests: Array<{ digest: string, artifactType: string, annotations?: Record<string, string> }> }
    expect(list.manifests.map(m => m.digest).sort()).toEqual([sig.manifest.digest, sbom.manifest.digest].sort())
    expect(list.manifests.find(m => m.digest === sig.manifest.digest)?.annotations).toEqual({ who: 'me' })

    const filtered = await t.inject('GET', `/v2/r/referrers/${img.manifest.digest}?artifactType=application/spdx%2Bjson`)
    expect(filtered.headers['oci-filters-applied']).toBe('artifactType')
    expect((filtered.json() as { manifests: unknown[] }).manifests).toHaveLength(1)
    const none = await t.inject('GET', `/v2/r/referrers/${blob('x').digest}`)
    expect(none.status).toBe(200)
    expect(none.json()).toMatchObject({ schemaVersion: 2, manifests: [] })
  })

  it('takes chunked uploads in order, 416s out-of-order chunks, reports status', async () => {
    const b = blob('hello chunked world')
    const start = await t.inject('POST', '/v2/c/blobs/uploads/')
    expect(start.status).toBe(202)
    const loc = start.headers.location as string
    expect(loc).toMatch(/^\/v2\/c\/blobs\/uploads\/[0-9a-f-]+$/)
    const outOfOrder = await t.inject('PATCH', loc, { body: b.bytes.subarray(5), headers: { 'content-range': `5-${b.bytes.byteLength - 1}` } })
    expect(outOfOrder.status).toBe(416)
    expect(outOfOrder.headers.range).toBe('0-0')
    const p1 = await t.inject('PATCH', loc, { body: b.bytes.subarray(0, 5), headers: { 'content-range': '0-4' } })
    expect(p1.status).toBe(202)
    expect(p1.headers.range).toBe('0-4')
    expect((await t.inject('PATCH', loc, { body: b.bytes.subarray(0, 5), headers: { 'content-range': '0-4' } })).status).toBe(416)
    const status = await t.inject('GET', loc)
    expect(status.status).toBe(204)
    expect(status.headers.range).toBe('0-4')
    const p2 = await t.inject('PATCH', loc, { body: b.bytes.subarray(5, 10) })
    expect(p2.headers.range).toBe('0-9')
    const bad = await t.inject('PUT', `${loc}?digest=${blob('other').digest}`, { body: b.bytes.subarray(10) })
    expect(bad.json()).toMatchObject({ errors: [{ code: 'DIGEST_INVALID' }] })
    expect((await t.inject('GET', loc)).json()).toMatchObject({ errors: [{ code: 'BLOB_UPLOAD_UNKNOWN' }] })

    const again = (await t.inject('POST', '/v2/c/blobs/uploads/')).headers.location as string
    await t.inject('PATCH', again, { body: b.bytes.subarray(0, 10) })
    const done = await t.inject('PUT', `${again}?digest=${b.digest}`, { body: b.bytes.subarray(10) })
    expect(done.status).toBe(201)
    expect((await t.inject('GET', `/v2/c/blobs/${b.digest}`)).body.toString()).toBe('hello chunked world')
    expect((await t.inject('GET', '/v2/other/blobs/uploads/' + again.split('/').pop())).status).toBe(404)
  })

  it('discards expired upload sessions', async () => {
    const short = await makeGateway({ uploadTtlMs: 1 })
    try {
      const loc = (await short.inject('POST', '/v2/e/blobs/uploads/')).headers.location as string
      await new Promise(resolve => setTimeout(resolve, 5))
      expect((await short.inject('GET', loc)).json()).toMatchObject({ errors: [{ code: 'BLOB_UPLOAD_UNKNOWN' }] })
    } finally { await short.cleanup() }
  })
})
