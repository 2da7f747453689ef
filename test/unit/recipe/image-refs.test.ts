import { describe, expect, it } from 'vitest'
import { imageRefsOf, mapImageRefs, parseRecipe } from '../../../src/recipe/index.ts'

const dockerfile = [
  'ARG BASE=alpine:3.20',
  'FROM ${BASE} AS build',
  'RUN make',
  'FROM scratch AS empty',
  'FROM build',
  'COPY --from=docker://quay.io/tools/bin:1 /x /x',
  'COPY --from=build /out /out',
  'COPY --from=alpine:3.20 /etc/os-release /os-release',
  ''
].join('\n')

describe('the images a plan names', () => {
  it('lists stage bases and COPY --from images once each, after substitution, and no stages or scratch', () => {
    const plan = parseRecipe(dockerfile, { filename: 'Dockerfile', buildArgs: { BASE: 'sha256:' + 'a'.repeat(64) } })
    expect(imageRefsOf(plan)).toEqual(['sha256:' + 'a'.repeat(64), 'docker://quay.io/tools/bin:1', 'alpine:3.20'])
  })

  it('reads Apptainer Bootstrap/From as the normalized registry ref', () => {
    const plan = parseRecipe('Bootstrap: docker\nFrom: busybox\n\n%post\n  true\n', { filename: 'Singularity.def' })
    expect(imageRefsOf(plan)).toEqual(['docker://docker.io/library/busybox:latest'])
  })

  it('replaces every image ref, leaves stages, scratch and the steps\' canonical text alone, and does not touch the plan given', () => {
    const plan = parseRecipe(dockerfile, { filename: 'Dockerfile' })
    const before = structuredClone(plan)
    const mapped = mapImageRefs(plan, ref => `pinned(${ref})`)
    expect(plan).toEqual(before)
    expect(imageRefsOf(mapped)).toEqual(['pinned(alpine:3.20)', 'pinned(docker://quay.io/tools/bin:1)'])
    expect(mapped.stages.map(s => s.base.kind)).toEqual(plan.stages.map(s => s.base.kind))
    const canon = (p: typeof plan): string[] => p.stages.flatMap(s => s.steps.map(st => st.canonical))
    expect(canon(mapped)).toEqual(canon(plan))
    const copies = mapped.stages.flatMap(s => s.steps).filter(s => s.op === 'copy').map(s => s.from)
    expect(copies).toEqual([{ kind: 'image', ref: 'pinned(docker://quay.io/tools/bin:1)' }, { kind: 'stage', stage: 0 }, { kind: 'image', ref: 'pinned(alpine:3.20)' }])
  })
})
