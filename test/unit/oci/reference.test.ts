import { describe, expect, it } from 'vitest'
import { formatImageRef, parseImageRef } from '../../../src/oci/index.ts'
import type { ImageRef } from '../../../src/oci/index.ts'

const D = `sha256:${'a'.repeat(64)}`

describe('parseImageRef', () => {
  const table: Array<[string, ImageRef, string?]> = [
    ['oci:/tmp/layout', { transport: 'oci', path: '/tmp/layout' }],
    ['oci:/tmp/layout:base', { transport: 'oci', path: '/tmp/layout', tag: 'base' }],
    ['oci:rel/dir:v1.0', { transport: 'oci', path: 'rel/dir', tag: 'v1.0' }],
    ['oci:/l:example.com/img:1', { transport: 'oci', path: '/l', tag: 'example.com/img:1' }],
    ['oci-archive:/tmp/a.tar', { transport: 'oci-archive', path: '/tmp/a.tar' }],
    ['oci-archive:/tmp/a.tar:latest', { transport: 'oci-archive', path: '/tmp/a.tar', tag: 'latest' }],
    ['docker-archive:/tmp/d.tar', { transport: 'docker-archive', path: '/tmp/d.tar' }],
    ['docker-archive:/tmp/d.tar:busybox', { transport: 'docker-archive', path: '/tmp/d.tar', name: { domain: 'docker.io', path: 'library/busybox', tag: 'latest' } }, 'docker-archive:/tmp/d.tar:docker.io/library/busybox:latest'],
    ['docker-archive:/tmp/d.tar:@1', { transport: 'docker-archive', path: '/tmp/d.tar', index: 1 }],
    ['docker://busybox', { transport: 'docker', name: { domain: 'docker.io', path: 'library/busybox', tag: 'latest' } }, 'docker://docker.io/library/busybox:latest'],
    ['docker://index.docker.io/user/img:1', { transport: 'docker', name: { domain: 'docker.io', path: 'user/img', tag: '1' } }, 'docker://docker.io/user/img:1'],
    ['docker://localhost:5000/a/b:t', { transport: 'docker', name: { domain: 'localhost:5000', path: 'a/b', tag: 't' } }],
    [`docker://quay.io/x/y@${D}`, { transport: 'docker', name: { domain: 'quay.io', path: 'x/y', digest: D as `sha256:${string}` } }],
    [`docker://ghcr.io/x/y:t@${D}`, { transport: 'docker', name: { domain: 'ghcr.io', path: 'x/y', tag: 't', digest: D as `sha256:${string}` } }],
    ['busybox', { transport: 'local', repository: 'busybox', tag: 'latest' }, 'busybox:latest'],
    ['localhost/kiln-bench/busybox:base', { transport: 'local', repository: 'localhost/kiln-bench/busybox', tag: 'base' }],
    ['localhost:5000/x:1', { transport: 'local', repository: 'localhost:5000/x', tag: '1' }],
    [`app@${D}`, { transport: 'local', repository: 'app', digest: D as `sha256:${string}` }],
    [D, { transport: 'digest', digest: D as `sha256:${string}` }]
  ]
  it.each(table)('%s', (text, expected, formatted) => {
    const ref = parseImageRef(text)
    expect(ref).toEqual(expected)
    expect(formatImageRef(ref)).toBe(formatted ?? text)
    expect(parseImageRef(formatImageRef(ref))).toEqual(ref)
  })

  it.each([
    '', ' busybox', 'sha256:abc', 'Busybox', 'docker:busybox', 'dir:/tmp/x', 'containers-storage:x',
    'oci:', 'oci::tag', 'busybox:bad tag', 'busybox@sha256:zz', 'a//b', 'docker://', 'docker-archive:/x:@one',
    'oci:/l:bad tag!', `x/${'a'.repeat(300)}`
  ])('refuses %j', text => {
    expect(() => parseImageRef(text)).toThrow(expect.objectContaining({ name: 'ReferenceInvalidError' }))
  })
})
