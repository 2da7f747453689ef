/**
 * History `created_by` and progress lines: each instruction as a person
 * reads it, from the parsed plan.
 */
import { describe, expect, it } from 'vitest'
import { instructionSummary, instructionText } from '../../../src/builder/instruction-text.ts'
import { parseRecipe } from '../../../src/recipe/index.ts'

function texts (recipe: string, filename = 'Dockerfile'): string[] {
  const plan = parseRecipe(recipe, { filename })
  const names = (i: number): string | undefined => plan.stages.find(s => s.index === i)?.name
  return plan.stages.flatMap(s => s.steps.map(step => instructionText(step, names)))
}

describe('instructionText', () => {
  it('writes Dockerfile steps the way docker history shows them, after substitution', () => {
    expect(texts(`FROM busybox AS build
ARG WHO=world
RUN echo "hi $WHO" > /x
RUN --network=none ["/bin/echo", "a b"]
FROM busybox
COPY --from=build --chmod=755 /x /y/
ADD --chown=1:1 a.tar b* /dst/
ENV A=1 B="two words"
WORKDIR /data/\${A}
USER nobody
LABEL org.example="v 1"
EXPOSE 80 53/udp
ENTRYPOINT ["/bin/tini", "--"]
CMD echo hello
`)).toEqual([
      'ARG WHO=world',
      'RUN /bin/sh -c echo "hi $WHO" > /x',
      'RUN --network=none ["/bin/echo" "a b"]',
      'COPY --from=build --chmod=755 /x /y/',
      'ADD --chown=1:1 a.tar b* /dst/',
      'ENV A=1 B=two words',
      'WORKDIR /data/1',
      'USER nobody',
      'LABEL org.example="v 1"',
      'EXPOSE 80 53/udp',
      'ENTRYPOINT ["/bin/tini" "--"]',
      'CMD /bin/sh -c echo hello'
    ])
  })

  it('names the %test check and the SCIF layout step', () => {
    const out = texts('Bootstrap: scratch\n\n%apprun tool\n    exec tool\n\n%test\n    tool --version\n', 'Singularity.def')
    expect(out[0]).toMatch(/^RUN \/bin\/sh -e -c # SCIF apps: tool\n/)
    expect(instructionSummary(out[0] ?? '')).toBe('RUN /bin/sh -e -c # SCIF apps: tool ...')
    expect(out.at(-1)).toBe('%test: running /.singularity.d/test')
    expect(out).toContain('%test /.singularity.d/test')
  })

  it('names Apptainer metadata files by their section', () => {
    const out = texts('Bootstrap: scratch\n\n%post\n    echo hi\n\n%runscript\n    echo run\n', 'Singularity.def')
    expect(out).toContain('%runscript /.singularity.d/runscript')
    expect(out.some(t => t.startsWith('RUN /bin/sh') && t.includes('echo hi'))).toBe(true)
  })

  it('shortens a multi-line script to its first line for progress output', () => {
    expect(instructionSummary('RUN /bin/sh -c set -e\necho a\necho b')).toBe('RUN /bin/sh -c set -e ...')
    expect(instructionSummary(`RUN ${'x'.repeat(200)}`, 20)).toBe('RUN xxxxxxxxxxxxx...')
    expect(instructionSummary('ENV A=1')).toBe('ENV A=1')
  })
})
