/**
 * What `kiln build` and `kiln submit` both read first: the context dir, the
 * recipe, the build args. Docker's rules for stdin: `-f -` reads the recipe
 * from stdin (the context is the directory given); a context of `-` reads a
 * tar (plain or compressed) from stdin and unpacks it into a temp dir, with
 * the recipe inside it (`-f` is then a path in the tar), or, when stdin is
 * not a tar, takes stdin as the recipe with an empty context.
 */
import { lstat, mkdtemp, readFile, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { CliError } from './errors.ts'
import { EXIT } from './exit-codes.ts'

export interface RecipeInput {
  contextDir: string
  /** The recipe's path; for one read from stdin, CONTEXT/Dockerfile or CONTEXT/Singularity.def (the name picks the front-end). */
  recipePath: string
  text: string
  buildArgs: Record<string, string>
  /** Removes what reading made (the context unpacked from stdin); safe to call twice. */
  cleanup: () => Promise<void>
}

/** Recipe file names looked for in the context when -f is not given, in this order. */
export const RECIPE_NAMES = ['Dockerfile', 'Containerfile', 'Singularity.def', 'Apptainer.def']

/** The word that means stdin, for `-f` and for the context. */
export const STDIN = '-'

/** Longest recipe read from stdin, in bytes (the front-ends refuse longer ones anyway). */
const MAX_STDIN_RECIPE = 4 * 1024 * 1024

export interface ReadRecipeOptions {
  /** Where `-` reads from; default process.stdin. */
  stdin?: AsyncIterable<Uint8Array>
  /** Where the build args without `=VALUE` are taken from; default process.env. */
  env?: NodeJS.ProcessEnv
}

/**
 * `--build-arg KEY=VALUE`, and `--build-arg KEY` taking KEY's value from the
 * environment (Docker's rule): a KEY the environment lacks is left unset, so
 * the recipe's ARG default applies.
 */
export function parseBuildArgs (list: readonly string[], env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const buildArgs: Record<string, string> = {}
  for (const kv of list) {
    const i = kv.indexOf('=')
    const key = i < 0 ? kv : kv.slice(0, i)
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new CliError(`--build-arg ${kv}: expected KEY=VALUE, or KEY to take its value from the environment`, { exitCode: EXIT.usage })
    if (i >= 0) buildArgs[key] = kv.slice(i + 1)
    else if (env[key] !== undefined) buildArgs[key] = env[key]
  }
  return buildArgs
}

export async function readRecipeInput (contextArg: string, file: string | undefined, buildArgList: readonly string[], options: ReadRecipeOptions = {}): Promise<RecipeInput> {
  const buildArgs = parseBuildArgs(buildArgList, options.env)
  const stdin = options.stdin ?? process.stdin
  if (contextArg === STDIN && file === STDIN) throw new CliError('-f - and context - both read stdin', { exitCode: EXIT.usage, hint: 'pipe either the recipe (-f - with a context directory) or a context tar (context -)' })
  if (contextArg === STDIN) return await fromStdinContext(stdin, file, buildArgs)
  const contextDir = resolve(contextArg)
  if (!(await stat(contextDir).catch(() => undefined))?.isDirectory()) throw new CliError(`build context ${contextArg} is not a directory`, { exitCode: EXIT.usage, hint: 'give a directory, or - to read a context tar from stdin' })
  const nothing = async (): Promise<void> => {}
  if (file === STDIN) {
    const text = await stdinRecipe(stdin)
    return { contextDir, recipePath: join(contextDir, await stdinRecipeName(text)), text, buildArgs, cleanup: nothing }
  }
  return { ...await recipeIn(contextDir, contextArg, file === undefined ? undefined : resolve(file)), buildArgs, cleanup: nothing }
}

async function recipeIn (contextDir: string, contextName: string, recipePath: string | undefined): Promise<{ contextDir: string, recipePath: string, text: string }> {
  if (recipePath === undefined) {
    for (const name of RECIPE_NAMES) {
      if (await stat(join(contextDir, name)).then(() => true, () => false)) { recipePath = join(contextDir, name); break }
    }
  }
  if (recipePath === undefined) throw new CliError(`no recipe in ${contextName}`, { exitCode: EXIT.usage, hint: 'name one with -f RECIPE' })
  const path = recipePath
  const text = await readFile(path, 'utf8').catch(() => { throw new CliError(`cannot read recipe ${path}`, { exitCode: EXIT.notFound }) })
  return { contextDir, recipePath: path, text }
}

/** `Singularity.def` for an Apptainer definition, else `Dockerfile`: the name picks the front-end. */
async function stdinRecipeName (text: string): Promise<string> {
  const { detectFrontend } = await import('../recipe/index.ts')
  return detectFrontend(undefined, text) === 'apptainer' ? 'Singularity.def' : 'Dockerfile'
}

async function stdinRecipe (stdin: AsyncIterable<Uint8Array>, head: Uint8Array[] = []): Promise<string> {
  const chunks = [...head]
  let size = chunks.reduce((n, c) => n + c.byteLength, 0)
  for await (const chunk of stdin) {
    size += chunk.byteLength
    if (size > MAX_STDIN_RECIPE) throw new CliError(`the recipe on stdin is larger than ${MAX_STDIN_RECIPE} bytes`, { exitCode: EXIT.usage, hint: 'is it a context? a context on stdin must be a tar (tar -C DIR -c .)' })
    chunks.push(chunk)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  if (text.trim() === '') throw new CliError('stdin is empty: no recipe', { exitCode: EXIT.usage, hint: 'pipe a recipe (kiln build -f - DIR < Dockerfile) or a context tar (tar -C DIR -c . | kiln build -)' })
  return text
}

/** A tar (ustar magic at 257) or a compressed stream (gzip, zstd): what `docker build -` unpacks. */
export function looksLikeArchive (head: Uint8Array): boolean {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength)
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return true
  if (b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return true
  return b.length >= 262 && b.subarray(257, 262).toString('latin1') === 'ustar'
}

async function fromStdinContext (stdin: AsyncIterable<Uint8Array>, file: string | undefined, buildArgs: Record<string, string>): Promise<RecipeInput> {
  const it = stdin[Symbol.asyncIterator]()
  const head: Uint8Array[] = []
  let size = 0
  let ended = false
  while (size < 512) {
    const r = await it.next()
    if (r.done === true) { ended = true; break }
    head.push(r.value)
    size += r.value.byteLength
  }
  async function * remaining (): AsyncIterable<Uint8Array> {
    for (let r = ended ? undefined : await it.next(); r !== undefined && r.done !== true; r = await it.next()) yield r.value
  }
  const rest = remaining()
  const { removeTree } = await import('../util/fs.ts')
  const contextDir = await mkdtemp(join(tmpdir(), 'kiln-context-'))
  const cleanup = async (): Promise<void> => { await removeTree(contextDir) }
  try {
    if (!looksLikeArchive(Buffer.concat(head))) {
      if (file !== undefined) throw new CliError(`-f ${file}: stdin is not a tar, so there is no context to find it in`, { exitCode: EXIT.usage, hint: 'pipe a tar of the context (tar -C DIR -c . | kiln build -f FILE -), or the recipe alone without -f' })
      const text = await stdinRecipe(rest, head)
      return { contextDir, recipePath: join(contextDir, await stdinRecipeName(text)), text, buildArgs, cleanup }
    }
    const { extractLayer } = await import('../oci/index.ts')
    async function * all (): AsyncIterable<Uint8Array> { yield * head; yield * rest }
    try {
      await extractLayer(all(), contextDir)
    } catch (err) {
      throw new CliError(`the context tar on stdin cannot be unpacked: ${(err as Error).message}`, { exitCode: EXIT.usage, cause: err })
    }
    // A path in the tar: it may not leave the context, nor be a link (which could point anywhere on this host).
    const fileIn = async (name: string): Promise<string | undefined> => {
      const path = resolve(contextDir, name.replace(/^\/+/, ''))
      const st = path.startsWith(`${contextDir}/`) ? await lstat(path).catch(() => undefined) : undefined
      return st?.isFile() === true ? path : undefined
    }
    let recipePath: string | undefined
    if (file !== undefined) {
      recipePath = await fileIn(file)
      if (recipePath === undefined) throw new CliError(`-f ${file}: no such file in the context tar`, { exitCode: EXIT.notFound, hint: '-f is a path inside the tar when the context is -' })
    } else {
      for (const name of RECIPE_NAMES) if ((recipePath = await fileIn(name)) !== undefined) break
      if (recipePath === undefined) throw new CliError('no recipe in the context tar on stdin', { exitCode: EXIT.usage, hint: `put a ${RECIPE_NAMES.join(', ')} file at its root, or name one with -f PATH-IN-THE-TAR` })
    }
    return { ...await recipeIn(contextDir, 'the context tar on stdin', recipePath), buildArgs, cleanup }
  } catch (err) {
    await cleanup()
    throw err
  }
}
