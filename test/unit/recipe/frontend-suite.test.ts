// One suite every recipe front-end must pass: the same recipe written in each
// syntax gives the same plan shape, and errors carry their line.
import { describe, expect, it } from 'vitest'
import { parseRecipe, RecipeError } from '../../../src/recipe/index.ts'
import type { BuildPlan, Frontend, Step } from '../../../src/recipe/index.ts'

interface FrontendCase {
  frontend: Frontend
  filename: string
  /** Base alpine:3.19, one RUN, one COPY a.txt -> /opt/a.txt, one label. */
  simple: string
  imageRef: string
  /** Stages build (writes /out), unused, final (copies /out from build). */
  multiStage: string
  /** An unknown instruction/section on line 3. */
  unknownOnLine3: string
  /** Same as `simple` with other whitespace and comments. */
  simpleReformatted: string
}

const cases: FrontendCase[] = [
  {
    frontend: 'dockerfile',
    filename: 'Dockerfile',
    simple: 'FROM alpine:3.19\nRUN echo hi\nCOPY a.txt /opt/a.txt\nLABEL org.example.owner=hpc\n',
    simpleReformatted: '# a comment\n\nfrom   alpine:3.19\n  run echo hi\n\ncopy a.txt   /opt/a.txt\nlabel org.example.owner=hpc\n',
    imageRef: 'alpine:3.19',
    multiStage: 'FROM alpine:3.19 AS build\nRUN echo built > /out\nFROM alpine:3.19 AS unused\nRUN true\nFROM alpine:3.19 AS final\nCOPY --from=build /out /out\n',
    unknownOnLine3: 'FROM alpine:3.19\nRUN true\nFORM x\n'
  },
  {
    frontend: 'apptainer',
    filename: 'app.def',
    simple: 'Bootstrap: docker\nFrom: alpine:3.19\n%post\necho hi\n%files\na.txt /opt/a.txt\n%labels\norg.example.owner hpc\n',
    simpleReformatted: '# a comment\nBootstrap:   docker\n\nFrom:alpine:3.19\n%files\n  a.txt    /opt/a.txt\n%post\necho hi\n%labels\n    org.example.owner    hpc\n',
    imageRef: 'docker://docker.io/library/alpine:3.19',
    multiStage: 'Bootstrap: docker\nFrom: alpine:3.19\nStage: build\n%post\necho built > /out\n\nBootstrap: docker\nFrom: alpine:3.19\nStage: unused\n%post\ntrue\n\nBootstrap: docker\nFrom: alpine:3.19\nStage: final\n%files from build\n/out /out\n',
    unknownOnLine3: 'Bootstrap: docker\nFrom: alpine:3.19\n%pots\necho hi\n'
  }
]

function steps (plan: BuildPlan, op: Step['op']): Step[] {
  return plan.stages.flatMap(s => s.steps).filter(s => s.op === op)
}

describe.each(cases)('recipe front-end: $frontend', (c) => {
  const parse = (text: string, extra = {}): BuildPlan => parseRecipe(text, { filename: c.filename, ...extra })

  it('is detected from the file name and from the content', () => {
    expect(parse(c.simple).frontend).toBe(c.frontend)
    expect(parseRecipe(c.simple, { filename: 'recipe' }).frontend).toBe(c.frontend)
  })

  it('resolves the base image', () => {
    const plan = parse(c.simple)
    expect(plan.stages).toHaveLength(1)
    expect(plan.stages[0]?.base).toEqual({ kind: 'image', ref: c.imageRef })
    expect(plan.target).toBe(0)
  })

  it('turns the command into a RUN step with its line', () => {
    const [run] = steps(parse(c.simple), 'run')
    expect(run?.op === 'run' && run.command).toEqual(expect.objectContaining({ form: 'shell', script: expect.stringContaining('echo hi') }))
    expect(run?.source.line).toBe(c.frontend === 'dockerfile' ? 2 : 3)
  })

  it('turns the file copy into a COPY step from the context', () => {
    const [copy] = steps(parse(c.simple), 'copy')
    expect(copy).toMatchObject({ op: 'copy', from: { kind: 'context' }, sources: [{ kind: 'path', path: 'a.txt' }], dest: '/opt/a.txt' })
  })

  it('keeps labels', () => {
    const [label] = steps(parse(c.simple), 'label')
    expect(label).toMatchObject({ op: 'label', labels: [{ key: 'org.example.owner', value: 'hpc' }] })
  })

  it('gives steps canonical forms that ignore formatting but not meaning', () => {
    const canon = (text: string): string[] => parse(text).stages.flatMap(s => s.steps).map(s => s.canonical).sort()
    expect(canon(c.simpleReformatted)).toEqual(canon(c.simple))
    expect(canon(c.simple.replace('echo hi', 'echo bye'))).not.toEqual(canon(c.simple))
  })

  it('links stages, prunes the unused ones and honours the target', () => {
    const plan = parse(c.multiStage)
    expect(plan.stages.map(s => s.name)).toEqual(['build', 'final'])
    expect(plan.target).toBe(2)
    expect(plan.stages.map(s => s.index)).toEqual([0, 2])
    expect(steps(plan, 'copy')[0]).toMatchObject({ from: { kind: 'stage', stage: 0 } })
    expect(parse(c.multiStage, { target: 'unused' }).stages.map(s => s.name)).toEqual(['unused'])
    const buildOnly = parse(c.multiStage, { target: 'build' })
    expect(buildOnly.stages.map(s => s.name)).toEqual(['build'])
    expect(buildOnly.target).toBe(0)
  })

  it('rejects an unknown target stage', () => {
    expect(() => parse(c.multiStage, { target: 'nope' })).toThrow(expect.objectContaining({ name: 'UnknownStageError' }))
  })

  it('reports an unknown instruction with its line and a suggestion', () => {
    try {
      parse(c.unknownOnLine3)
      expect.unreachable()
    } catch (err) {
      expect(err).toBeInstanceOf(RecipeError)
      expect(err).toMatchObject({ name: 'UnknownInstructionError', file: c.filename, line: 3 })
      expect((err as RecipeError).hint).toMatch(/did you mean %?(FROM|post)\?/i)
    }
  })

  it('rejects an empty recipe', () => {
    expect(() => parse('\n# only a comment\n\n')).toThrow(expect.objectContaining({ name: 'EmptyRecipeError' }))
  })

  it('produces a JSON-serializable plan', () => {
    const plan = parse(c.multiStage)
    expect(JSON.parse(JSON.stringify(plan))).toEqual(plan)
  })
})
