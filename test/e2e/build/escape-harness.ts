/**
 * The harness of the builder's escape tests (escape.test.ts): the host
 * targets an attacker aims at, one arena per sandbox driver, and the
 * attacker, which runs hostile builds as the unprivileged user and lists
 * everything that got out: `attack()` for a build of its own, `shared()` for
 * one build several cases read from, each in its own path of the image.
 *
 * Terms:
 * - secret: bytes the user can read outside any build: `secret.txt` in a
 *   0700 dir of its HOME (`secretDir`, which also holds an empty `inner/`),
 *   the node key of the data dir the build runs with (`identity.key`, see
 *   src/p2p/identity.ts), and a token in kiln's own environment
 *   (`KILN_ESCAPE_TOKEN`, as an agent may hold object-store credentials).
 * - victim: a dir the user owns outside any build; it must stay empty.
 * - build args: the host paths reach a recipe as SECRET_DIR, SECRET, DATA and
 *   VICTIM, standing for what a real attacker reads in /proc/self/mountinfo.
 * - outcome: `built` (exit 0; the result, exported by the build to an OCI
 *   layout, must hold no secret's bytes in any layer) or `refused` (exit 2
 *   or more, the statuses src/cli/exit-codes.ts gives to classified
 *   failures, with an error naming the attacking line as FILE:LINE). Each
 *   case lists the outcomes it accepts. Either way the victim stays empty,
 *   the secret files keep their bytes and secret.txt its one link, and
 *   kiln's output holds no secret.
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect } from 'vitest'
import { readLayoutLayers } from '../../helpers/image-layers.ts'
import type { ImageLayer } from '../../helpers/image-layers.ts'
import type { KilnRun, Unprivileged } from '../../helpers/unprivileged.ts'

export type Outcome = 'built' | 'refused'
export type SandboxChoice = 'auto' | 'unshare' | 'proot'

/** `..` enough times to climb from any dir kiln uses to the host's `/`; prefixed to an absolute path it makes a relative link. */
export const UP = Array(24).fill('..').join('/')

export interface Targets {
  secretDir: string
  secret: string
  secretBytes: Buffer
  token: string
}

/** Makes the secret dir and token; call once per file. */
export function makeTargets (u: Unprivileged): Targets {
  const secretDir = join(u.home, 'secrets')
  mkdirSync(join(secretDir, 'inner'), { recursive: true })
  const secretBytes = Buffer.from(`kiln-escape-secret-${randomBytes(16).toString('hex')}\n`)
  const secret = join(secretDir, 'secret.txt')
  writeFileSync(secret, secretBytes, { mode: 0o600 })
  u.give(secretDir)
  chmodSync(secretDir, 0o700)
  return { secretDir, secret, secretBytes, token: `kiln-escape-token-${randomBytes(16).toString('hex')}` }
}

export interface Arena {
  sandbox: SandboxChoice
  /** The data dir this driver's builds run with, holding identity.key. */
  dataDir: string
  keyBytes: Buffer
  victim: string
  /** Placeholders a recipe may use, replaced before it is written (LAYOUT: the busybox base); no name may contain another. */
  placeholders: Record<string, string>
}

/** A data dir (with its node key, made by `kiln key show`) and a victim dir for one driver. */
export function makeArena (u: Unprivileged, sandbox: SandboxChoice, layout: string): Arena {
  const dataDir = join(u.home, `data-${sandbox}`)
  const victim = join(u.home, `victim-${sandbox}`)
  for (const d of [dataDir, victim]) { mkdirSync(d); u.give(d) }
  const key = u.kiln(['key', 'show', '--json'], { dataDir })
  if (key.status !== 0) throw new Error(`kiln key show failed: ${key.stderr}`)
  const { path } = JSON.parse(key.stdout) as { path: string }
  expect(path).toBe(join(dataDir, 'identity.key'))
  return { sandbox, dataDir, keyBytes: readFileSync(path), victim, placeholders: { LAYOUT: layout } }
}

export type ContextFile = string | Buffer | { link: string }

/** A hostile build: the recipe (placeholders of the arena replaced) and its context files. */
export interface Recipe {
  recipe: string
  file?: 'Dockerfile' | 'Singularity.def'
  files?: Record<string, ContextFile>
  /** Lines of kiln's output to print whatever the outcome (what the attacker's steps found). */
  log?: RegExp
}

/** What one case checks of a build. */
export interface Verdict {
  /** A distinctive part of the attacking line (or of each line that may refuse it): a refusal must name that line. */
  at: string | string[]
  accepts: Outcome[]
  /** In a build shared by several cases: the path in the image this case copies to; only it is searched for secrets. */
  under?: string
}

export type Attack = Recipe & Verdict

export interface Attempt {
  outcome: Outcome
  run: KilnRun
  /** The result's layers when it was built. */
  layers: ImageLayer[]
}

export interface Attacker {
  /** Builds the recipe and asserts that the attack got nothing, with the outcomes it accepts. */
  attack: (a: Attack) => Promise<Attempt>
  /**
   * One build for several cases, each of which reads into its own path of
   * the image: built on the first `check`, then judged per case. A refusal
   * anywhere leaves the other cases untried, and they fail saying so.
   */
  shared: (r: Recipe) => { check: (v: Verdict) => Promise<Attempt> }
  /** Runs kiln as the user with this driver's data dir, sandbox and environment. */
  kiln: (args: string[]) => KilnRun
  /** A fresh context dir holding the recipe (placeholders replaced) as `file`, and files. */
  context: (recipe: string, file: string, files?: Record<string, ContextFile>) => string
  buildArgs: string[]
  /** Empties the victim, so that one leak is reported by its own case only. */
  reset: () => void
}

interface Built extends Attempt {
  recipe: string
  file: string
  /** What got out whichever case looks: into the victim, onto the secret files, into kiln's output. */
  escapes: string[]
}

function linesOf (text: string, parts: string[]): number[] {
  return parts.map(part => {
    const i = text.split('\n').findIndex(l => l.includes(part))
    if (i < 0) throw new Error(`the recipe has no line with ${JSON.stringify(part)}`)
    return i + 1
  })
}

/** The names of the secrets whose bytes occur in bytes. */
function secretsIn (bytes: Buffer, secrets: Record<string, Buffer>): string[] {
  return Object.entries(secrets).filter(([, s]) => bytes.includes(s)).map(([name]) => name)
}

/**
 * Where secrets' bytes occur in the layers: `secret.txt in layer 2 of 2
 * (got/secret.txt)`. With `under`, only in the entries at or below that path.
 */
function leaksInLayers (layers: ImageLayer[], secrets: Record<string, Buffer>, under?: string): string[] {
  return layers.flatMap((layer, i) => {
    const entries = layer.entries.filter(e => under === undefined || e.name === under || e.name.startsWith(`${under}/`))
    const found = under === undefined ? secretsIn(layer.tar, secrets) : secretsIn(Buffer.concat(entries.map(e => e.body)), secrets)
    return found.map(name => {
      const where = entries.filter(e => e.body.includes(secrets[name] as Buffer)).map(e => e.name)
      return `${name} in layer ${i + 1} of ${layers.length}${where.length > 0 ? ` (${where.join(', ')})` : ''}`
    })
  })
}

export function makeAttacker (u: Unprivileged, targets: Targets, arena: Arena): Attacker {
  let n = 0
  const secrets: Record<string, Buffer> = { 'secret.txt': targets.secretBytes, 'identity.key': arena.keyBytes, KILN_ESCAPE_TOKEN: Buffer.from(targets.token) }
  const buildArgs = ['SECRET_DIR', targets.secretDir, 'SECRET', targets.secret, 'DATA', arena.dataDir, 'VICTIM', arena.victim]
    .flatMap((v, i, all) => i % 2 === 0 ? ['--build-arg', `${v}=${all[i + 1] ?? ''}`] : [])
  const kiln = (args: string[]): KilnRun => u.kiln(args, { dataDir: arena.dataDir, env: { KILN_SANDBOX: arena.sandbox, KILN_ESCAPE_TOKEN: targets.token } })
  const fill = (text: string): string => Object.entries(arena.placeholders).reduce((t, [k, v]) => t.replaceAll(k, v), text)

  const context = (recipe: string, file: string, files: Record<string, ContextFile> = {}): string => {
    const ctx = join(u.work, `ctx-${arena.sandbox}-${++n}`)
    mkdirSync(ctx)
    writeFileSync(join(ctx, file), recipe)
    for (const [name, content] of Object.entries(files)) {
      if (typeof content === 'object' && 'link' in content) symlinkSync(content.link, join(ctx, name))
      else writeFileSync(join(ctx, name), content)
    }
    u.give(ctx)
    return ctx
  }

  const build = async (r: Recipe): Promise<Built> => {
    const file = r.file ?? 'Dockerfile'
    const recipe = fill(r.recipe)
    const ctx = context(recipe, file, r.files)
    // The build log is kept (no --json) so that the steps' output is searched too; the result is
    // exported by the build itself, which saves a kiln process per case over `kiln image export`.
    const out = join(u.work, `out-${arena.sandbox}-${n}`)
    const run = kiln(['build', '--output', `oci:${out}:1`, '-f', join(ctx, file), ...buildArgs, ctx])
    if (r.log !== undefined) for (const l of (run.stdout + run.stderr).split('\n').filter(l => r.log?.test(l) === true)) console.log(`${arena.sandbox}: ${l}`)
    const escapes: string[] = []
    const planted = readdirSync(arena.victim)
    if (planted.length > 0) escapes.push(`the victim dir now holds ${planted.join(', ')}`)
    const links = lstatSync(targets.secret).nlink
    if (links !== 1) escapes.push(`secret.txt now has ${links} hard links`)
    // A step that wrote through to the host would also blind the searches below.
    if (!readFileSync(targets.secret).equals(targets.secretBytes)) escapes.push('secret.txt on the host was changed')
    if (!readFileSync(join(arena.dataDir, 'identity.key')).equals(arena.keyBytes)) escapes.push('identity.key on the host was changed')
    escapes.push(...secretsIn(Buffer.from(run.stdout + run.stderr), secrets).map(name => `${name} in kiln's output`))
    const outcome: Outcome = run.status === 0 ? 'built' : 'refused'
    return { outcome, run, layers: outcome === 'built' ? await readLayoutLayers(out) : [], recipe, file, escapes }
  }

  const judge = (b: Built, v: Verdict): Attempt => {
    const problems = [...b.escapes]
    if (b.outcome === 'refused') {
      const lines = linesOf(b.recipe, typeof v.at === 'string' ? [v.at] : v.at)
      const error = b.run.stderr.split('\n').find(l => l.startsWith('kiln: error: ')) ?? b.run.stderr.trim().split('\n').at(-1) ?? ''
      const named = new RegExp(`^kiln: error: ${b.file.replace('.', '\\.')}:(\\d+): `).exec(error)?.[1]
      if (!v.accepts.includes('refused')) problems.push(`refused, which this case does not accept: exit ${String(b.run.status)}: ${error}`)
      else if (b.run.status === null || b.run.status < 2) problems.push(`refused without a classified exit status (exit ${String(b.run.status)}): ${error}`)
      else if (named === undefined || !lines.includes(Number(named))) problems.push(`refused at ${named === undefined ? 'no recipe line' : `${b.file}:${named}`}, not at ${lines.map(l => `${b.file}:${l}`).join(' or ')}: ${error}`)
    } else {
      if (!v.accepts.includes('built')) problems.push('built, which this case does not accept')
      problems.push(...leaksInLayers(b.layers, secrets, v.under))
    }
    expect(problems, `${arena.sandbox}: ${String(v.at)}`).toEqual([])
    return { outcome: b.outcome, run: b.run, layers: b.layers }
  }

  const shared = (r: Recipe): { check: (v: Verdict) => Promise<Attempt> } => {
    let built: Promise<Built> | undefined
    return { check: async v => judge(await (built ??= build(r)), v) }
  }

  const reset = (): void => { for (const name of readdirSync(arena.victim)) rmSync(join(arena.victim, name), { recursive: true, force: true }) }
  return {
    attack: async a => judge(await build(a), a),
    shared,
    kiln,
    context: (recipe, file, files) => context(fill(recipe), file, files),
    buildArgs,
    reset
  }
}
