/**
 * Which bases an agent accepts in a peer's job (pinPlan): pinned images,
 * images of its own store, and scratch; never an unpinned registry ref, a
 * path on the host, nor a debootstrap base, whose package scripts would run
 * on the agent's host outside the sandbox.
 */
import { describe, expect, it } from 'vitest'
import { pinPlan } from '../../../agent/jobs/recipe-builder.ts'
import { imageRefsOf, parseRecipe } from '../../../src/recipe/index.ts'

const plan = (text: string): ReturnType<typeof parseRecipe> => parseRecipe(text, { filename: 'job.def' })
const DIGEST = `sha256:${'a'.repeat(64)}`

describe('bases of a job', () => {
  it('accepts local refs and scratch, and builds pinned refs from their digests', () => {
    expect(imageRefsOf(pinPlan(parseRecipe('FROM site/base:1\nRUN true\n', { filename: 'Dockerfile' })))).toEqual(['site/base:1'])
    expect(imageRefsOf(pinPlan(plan('Bootstrap: scratch\n%files\na /a\n')))).toEqual([])
    const registry = plan('Bootstrap: docker\nFrom: debian:12\n')
    const pinned = pinPlan(registry, [{ ref: imageRefsOf(registry)[0] as string, platform: 'linux/amd64', digest: DIGEST, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1 }])
    expect(imageRefsOf(pinned)).toEqual([DIGEST])
  })

  it.each([
    ['a registry', 'Bootstrap: docker\nFrom: debian:12\n'],
    ['a host path', 'Bootstrap: oci\nFrom: /srv/layout:x\n'],
    ['debootstrap', 'Bootstrap: debootstrap\nOSVersion: bookworm\nMirrorURL: http://deb.debian.org/debian\n']
  ])('refuses %s', (_, text) => {
    expect(() => pinPlan(plan(text))).toThrow(expect.objectContaining({ name: 'JobRefusedError' }))
  })
})
