/**
 * runRecipe (src/builder/run-recipe.ts): the one path from recipe text to a
 * build with log lines, behind kiln build, the gateway's local builds and
 * agent jobs. The builder here is a fake that records the plan and options
 * it gets and plays back events, so the parsing, admission and line cutting
 * are what is tested.
 */
import { describe, expect, it } from 'vitest'
import { runRecipe } from '../../../src/builder/index.ts'
import type { BuildEvent, BuildOptions, BuildResult, Builder, RecipeLogLine } from '../../../src/builder/index.ts'
import type { BuildPlan } from '../../../src/recipe/index.ts'

const RESULT: BuildResult = {
  descriptor: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'a'.repeat(64)}`, size: 10 },
  digest: `sha256:${'a'.repeat(64)}`,
  config: {} as BuildResult['config'],
  steps: [],
  size: 10,
  durationMs: 1
}

function fakeBuilder (events: BuildEvent[], fail?: Error): Builder & { calls: Array<{ plan: BuildPlan, options: BuildOptions }> } {
  const calls: Array<{ plan: BuildPlan, options: BuildOptions }> = []
  return {
    calls,
    build: async (plan, options) => {
      calls.push({ plan, options })
      for (const e of events) options.onEvent?.(e)
      if (fail !== undefined) throw fail
      return RESULT
    }
  }
}

const enc = new TextEncoder()
const output = (text: string | Uint8Array): BuildEvent => ({ type: 'output', stream: 'stdout', chunk: typeof text === 'string' ? enc.encode(text) : text })
const step = (index: number, total: number, text: string): BuildEvent => ({ type: 'step', index, total, stage: 0, text, source: { file: 'Dockerfile', line: index } })

const RECIPE = 'FROM scratch AS one\nCOPY a /a\nFROM scratch AS two\nCOPY b /b\n'

describe('runRecipe', () => {
  it('parses the recipe for the target and platform, and builds that plan for that platform', async () => {
    const builder = fakeBuilder([])
    const { plan, result } = await runRecipe(builder, { recipe: { text: RECIPE, file: 'Dockerfile' }, target: 'one', platform: 'linux/arm64' }, { contextDir: '/ctx', network: 'default' })
    expect(result).toBe(RESULT)
    expect(plan.stages.map(s => s.name)).toEqual(['one'])
    expect(builder.calls[0]?.plan).toBe(plan)
    expect(builder.calls[0]?.options).toMatchObject({ contextDir: '/ctx', network: 'default', platform: 'linux/arm64' })
  })

  it('cuts output into lines across chunks, sends an unfinished line when its step ends, and formats steps, cached steps and warnings', async () => {
    const euro = enc.encode('€')
    const lines: RecipeLogLine[] = []
    await runRecipe(fakeBuilder([
      step(1, 2, 'RUN /bin/sh -c printf ...\nsecond line'),
      output('one\ntw'), output(new Uint8Array([...enc.encode('o '), ...euro.slice(0, 1)])), output(new Uint8Array([...euro.slice(1), ...enc.encode('\nthree')])),
      { type: 'step-done', index: 1, cached: false, durationMs: 1 },
      { type: 'warning', message: 'base is old' },
      step(2, 2, 'COPY b /b'),
      { type: 'step-done', index: 2, cached: true, durationMs: 0 },
      { type: 'done' }
    ]), { recipe: { text: RECIPE, file: 'Dockerfile' } }, { contextDir: '/ctx', onLine: l => { lines.push(l) } })
    expect(lines).toEqual([
      { kind: 'step', text: '[1/2] RUN /bin/sh -c printf ... ...', index: 1, total: 2, instruction: 'RUN /bin/sh -c printf ...\nsecond line' },
      { kind: 'output', text: 'one' },
      { kind: 'output', text: 'two €' },
      { kind: 'output', text: 'three' },
      { kind: 'warning', text: 'warning: base is old' },
      { kind: 'step', text: '[2/2] COPY b /b', index: 2, total: 2, instruction: 'COPY b /b' },
      { kind: 'cached', text: '  cached' }
    ])
  })

  it('sends the unfinished last line of a build that fails', async () => {
    const lines: string[] = []
    const failure = new Error('step failed')
    await expect(runRecipe(fakeBuilder([step(1, 1, 'RUN x'), output('last words')], failure), { recipe: { text: RECIPE, file: 'Dockerfile' } }, {
      contextDir: '/ctx', onLine: l => { lines.push(l.text) }
    })).rejects.toBe(failure)
    expect(lines).toEqual(['[1/1] RUN x', 'last words'])
  })

  it('builds nothing when admit refuses the plan, and nothing for a recipe that does not parse', async () => {
    const builder = fakeBuilder([])
    const refusal = new Error('base not allowed')
    await expect(runRecipe(builder, { recipe: { text: RECIPE, file: 'Dockerfile' } }, { contextDir: '/ctx', admit: () => { throw refusal } })).rejects.toBe(refusal)
    await expect(runRecipe(builder, { recipe: { text: 'FROM scratch\nBOGUS x\n', file: 'Dockerfile' } }, { contextDir: '/ctx' })).rejects.toMatchObject({ name: expect.stringMatching(/Error$/) })
    expect(builder.calls).toEqual([])
  })

  it('takes the front-end from kind over the file name', async () => {
    const builder = fakeBuilder([])
    const { plan } = await runRecipe(builder, { recipe: { text: 'Bootstrap: scratch\n%post\n  echo hi\n', file: 'Dockerfile', kind: 'apptainer' } }, { contextDir: '/ctx' })
    expect(plan.frontend).toBe('apptainer')
  })
})
