/**
 * The gateway's SIF tag scheme (src/gateway/sif-artifacts.ts), in process:
 * which tags are SIF tags, a pushed `<tag>.sif` wins over the generated
 * artifact, and a SIF tag whose stem names nothing is MANIFEST_UNKNOWN.
 * Making the SIF itself needs squashfs-tools: test/e2e/sif/gateway.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { imageTagOfSifTag } from '../../../src/gateway/sif-artifacts.ts'
import { makeGateway, pushImage, testImage } from './helpers.ts'
import type { TestGateway } from './helpers.ts'

describe('SIF tags', () => {
  let t: TestGateway
  beforeEach(async () => { t = await makeGateway() })
  afterEach(async () => { await t.cleanup() })

  it('takes the stem of <tag>.sif, and nothing else', () => {
    expect(imageTagOfSifTag('1.0.sif')).toBe('1.0')
    expect(imageTagOfSifTag('latest.sif')).toBe('latest')
    expect(imageTagOfSifTag('.sif')).toBeUndefined()
    expect(imageTagOfSifTag('1.0')).toBeUndefined()
    expect(imageTagOfSifTag('1.0-sif')).toBeUndefined()
  })

  it('serves a pushed <tag>.sif as pushed, not a generated SIF', async () => {
    const img = testImage()
    const pushed = testImage('pushed-sif')
    await pushImage(t, 'p', img, '1.0')
    await pushImage(t, 'p', pushed, '1.0.sif')
    const res = await t.inject('GET', '/v2/p/manifests/1.0.sif')
    expect(res.status).toBe(200)
    expect(res.headers['docker-content-digest']).toBe(pushed.manifest.digest)
  })

  it('answers MANIFEST_UNKNOWN for a SIF tag whose stem names nothing', async () => {
    await pushImage(t, 'p', testImage(), '1.0')
    const res = await t.inject('GET', '/v2/p/manifests/2.0.sif')
    expect(res.status).toBe(404)
    expect(res.json()).toMatchObject({ errors: [{ code: 'MANIFEST_UNKNOWN' }] })
  })
})
