/**
 * Which bases an agent accepts in a peer's job: images of its own store and
 * scratch; never a registry, a path on the host, nor a debootstrap base,
 * whose package scripts would run on the agent's host outside the sandbox.
 */
import { describe, expect, it } from 'vitest'
import { localBaseRefs } from '../../../agent/jobs/recipe-builder.ts'
import { parseRecipe } from '../../../src/recipe/index.ts'

const plan = (text: string): ReturnType<typeof parseRecipe> => parseRecipe(text, { filename: 'job.def' })

describe('bases of a job', () => {
  it('accepts local refs and scratch', () => {
    expect(localBaseRefs(parseRecipe('FROM site/base:1\nRUN true\n', { filename: 'Dockerfile' }))).toEqual(['site/base:1'])
    expect(localBaseRefs(plan('Bootstrap: scratch\n%files\na /a\n'))).toEqual([])
  })

  it.each([
    ['a registry', 'Bootstrap: docker\nFrom: debian:12\n'],
    ['a host path', 'Bootstrap: oci\nFrom: /srv/layout:x\n'],
    ['debootstrap', 'Bootstrap: debootstrap\nOSVersion: bookworm\nMirrorURL: http://deb.debian.org/debian\n']
  ])('refuses %s', (_, text) => {
    expect(() => localBaseRefs(plan(text))).toThrow(expect.objectContaining({ name: 'JobRefusedError' }))
  })
})
