import { describe, expect, it } from 'vitest'
import { sha256Digest } from '../../../src/content/index.ts'
import { OCI_MANIFEST, formatPlatform, hostPlatform, parsePlatform, platformMatches, selectManifest } from '../../../src/oci/index.ts'
import type { ImageIndex } from '../../../src/oci/index.ts'

describe('platform', () => {
  it.each([
    ['linux/amd64', { os: 'linux', architecture: 'amd64' }, 'linux/amd64'],
    ['linux/x86_64', { os: 'linux', architecture: 'amd64' }, 'linux/amd64'],
    ['linux/aarch64', { os: 'linux', architecture: 'arm64', variant: 'v8' }, 'linux/arm64'],
    ['linux/arm64/v8', { os: 'linux', architecture: 'arm64', variant: 'v8' }, 'linux/arm64'],
    ['linux/arm', { os: 'linux', architecture: 'arm', variant: 'v7' }, 'linux/arm/v7'],
    ['linux/arm/6', { os: 'linux', architecture: 'arm', variant: 'v6' }, 'linux/arm/v6'],
    ['linux/ppc64le', { os: 'linux', architecture: 'ppc64le' }, 'linux/ppc64le'],
    ['Linux/AMD64/v3', { os: 'linux', architecture: 'amd64', variant: 'v3' }, 'linux/amd64/v3'],
    ['aarch64', { os: 'linux', architecture: 'arm64', variant: 'v8' }, 'linux/arm64']
  ])('parses %s', (text, expected, formatted) => {
    expect(parsePlatform(text)).toEqual(expected)
    expect(formatPlatform(parsePlatform(text))).toBe(formatted)
  })

  it.each(['', 'linux', 'linux/', 'a/b/c/d', 'linux/am d64'])('refuses %j', text => {
    expect(() => parsePlatform(text)).toThrow(expect.objectContaining({ name: 'PlatformInvalidError' }))
  })

  it('knows the host', () => {
    const h = hostPlatform()
    expect(h.os).toBe('linux')
    expect(platformMatches(h, h)).toBe(true)
  })

  it('matches with variant fallbacks', () => {
    expect(platformMatches(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64' })).toBe(true)
    expect(platformMatches(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v6' })).toBe(true)
    expect(platformMatches(parsePlatform('linux/arm/v6'), { os: 'linux', architecture: 'arm', variant: 'v7' })).toBe(false)
    expect(platformMatches(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64', variant: 'v3' })).toBe(false)
    expect(platformMatches(parsePlatform('linux/amd64/v3'), { os: 'linux', architecture: 'amd64' })).toBe(true)
    expect(platformMatches(parsePlatform('linux/amd64'), { os: 'windows', architecture: 'amd64' })).toBe(false)
  })

  it('selects the best index entry and skips platformless entries', () => {
    const entry = (name: string, platform?: { os: string, architecture: string, variant?: string }): ImageIndex['manifests'][number] =>
      ({ mediaType: OCI_MANIFEST, digest: sha256Digest(name), size: 1, ...(platform === undefined ? {} : { platform }) })
    const index: ImageIndex = {
      schemaVersion: 2,
      manifests: [
        entry('attestation'),
        entry('amd64', { os: 'linux', architecture: 'amd64' }),
        entry('amd64v3', { os: 'linux', architecture: 'amd64', variant: 'v3' }),
        entry('armv6', { os: 'linux', architecture: 'arm', variant: 'v6' }),
        entry('armv7', { os: 'linux', architecture: 'arm', variant: 'v7' }),
        entry('arm64', { os: 'linux', architecture: 'arm64', variant: 'v8' })
      ]
    }
    expect(selectManifest(index, parsePlatform('linux/amd64')).digest).toBe(sha256Digest('amd64'))
    expect(selectManifest(index, parsePlatform('linux/amd64/v3')).digest).toBe(sha256Digest('amd64v3'))
    expect(selectManifest(index, parsePlatform('linux/amd64/v4')).digest).toBe(sha256Digest('amd64v3'))
    expect(selectManifest(index, parsePlatform('linux/arm/v7')).digest).toBe(sha256Digest('armv7'))
    expect(selectManifest(index, parsePlatform('linux/aarch64')).digest).toBe(sha256Digest('arm64'))
    expect(() => selectManifest(index, parsePlatform('linux/s390x'))).toThrow(/linux\/amd64, linux\/amd64\/v3/)
  })
})
