/** What `kiln build` and `kiln submit` both read first: the context dir, the recipe, the build args. */
import { readFile, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { CliError } from './errors.ts'
import { EXIT } from './exit-codes.ts'

export interface RecipeInput {
  contextDir: string
  recipePath: string
  text: string
  buildArgs: Record<string, string>
}

/** Recipe file names looked for in the context when -f is not given, in this order. */
export const RECIPE_NAMES = ['Dockerfile', 'Containerfile', 'Singularity.def', 'Apptainer.def']

export async function readRecipeInput (contextArg: string, file: string | undefined, buildArgList: readonly string[]): Promise<RecipeInput> {
  const contextDir = resolve(contextArg)
  if (!(await stat(contextDir).catch(() => undefined))?.isDirectory()) throw new CliError(`build context ${contextArg} is not a directory`, { exitCode: EXIT.usage })
  let recipePath = file === undefined ? undefined : resolve(file)
  if (recipePath === undefined) {
    for (const name of RECIPE_NAMES) {
      if (await stat(join(contextDir, name)).then(() => true, () => false)) { recipePath = join(contextDir, name); break }
    }
  }
  if (recipePath === undefined) throw new CliError(`no recipe in ${contextArg}`, { exitCode: EXIT.usage, hint: 'name one with -f RECIPE' })
  const path = recipePath
  const text = await readFile(path, 'utf8').catch(() => { throw new CliError(`cannot read recipe ${path}`, { exitCode: EXIT.notFound }) })
  const buildArgs: Record<string, string> = {}
  for (const kv of buildArgList) {
    const i = kv.indexOf('=')
    if (i <= 0) throw new CliError(`--build-arg ${kv}: expected KEY=VALUE`, { exitCode: EXIT.usage })
    buildArgs[kv.slice(0, i)] = kv.slice(i + 1)
  }
  return { contextDir, recipePath: path, text, buildArgs }
}
