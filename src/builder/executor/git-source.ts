/**
 * `ADD <git>` (BuildKit's syntax, `URL#ref:subdir`): the builder runs the
 * host's `git`, not the sandbox. `gitSource` resolves the ref to a commit
 * with `git ls-remote` (a 40-hex ref is a commit already): the commit is
 * the step key's input, so an unchanged ref is a cache hit with no clone.
 * `checkoutGit` clones that commit into a temp dir for the step to copy;
 * `.git` stays only with --keep-git-dir.
 *
 * git runs with no terminal prompt, no system or global config and no
 * hooks from the repository (a fresh `git init` has none).
 */
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp } from 'node:fs/promises'
import { join } from 'node:path'
import type { SourceLoc } from '../../recipe/ir.ts'
import { RemoteSourceError } from '../errors.ts'
import type { BuildScope } from '../stage.ts'
import { requireNetwork, withRemoteTimeout } from './remote.ts'

export interface GitSourceRef { remote: string, ref?: string, subdir?: string, keepGitDir: boolean }

export interface GitCommit {
  commit: string
  /** What the step key hashes for this source. */
  input: string
}

const COMMIT = /^[0-9a-f]{40}$/

const GIT_ENV = { GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_ASKPASS: '/bin/false', LC_ALL: 'C' }

async function git (args: string[], options: { cwd?: string, signal: AbortSignal }, what: string, source: SourceLoc): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile('git', args, { ...options, env: { ...process.env, ...GIT_ENV }, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err === null) { resolve(stdout); return }
      if (options.signal.aborted) { reject(options.signal.reason as Error); return }
      const detail = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'git is not installed on this node (kiln doctor checks for it)' : stderr.trim().split('\n').slice(-3).join('; ')
      reject(new RemoteSourceError(`ADD ${what}: git ${args[0] ?? ''} failed: ${detail}`, source))
    })
  })
}

function display (src: GitSourceRef): string {
  return `${src.remote}#${src.ref ?? ''}${src.subdir === undefined ? '' : `:${src.subdir}`}`
}

export async function gitSource (scope: BuildScope, src: GitSourceRef, source: SourceLoc): Promise<GitCommit> {
  const what = display(src)
  requireNetwork(scope, what, source)
  const ref = src.ref ?? 'HEAD'
  const commit = COMMIT.test(ref)
    ? ref
    : await withRemoteTimeout(scope, what, source, async (signal) => {
      const out = await git(['ls-remote', '--', src.remote, ref], { signal }, what, source)
      const lines = out.split('\n').filter(l => l !== '').map(l => l.split('\t') as [string, string])
      // A tag's peeled line (`^{}`) names the commit; an exact ref wins over a branch or tag of that name.
      const pick = lines.find(([, n]) => n === `${ref}^{}`) ?? lines.find(([, n]) => n === ref) ??
        lines.find(([, n]) => n === `refs/tags/${ref}^{}`) ?? lines.find(([, n]) => n === `refs/heads/${ref}`) ?? lines.find(([, n]) => n === `refs/tags/${ref}`)
      if (pick === undefined) throw new RemoteSourceError(`ADD ${what}: the repository has no ref ${ref}`, source)
      return pick[0]
    })
  return { commit, input: `git ${src.remote} ${commit} ${src.subdir ?? ''} ${src.keepGitDir ? 'keep-git-dir' : ''}` }
}

/** Clones the commit into a new dir under `tmp`; returns the dir to copy (the subdir, if any). The caller removes `dir`. */
export async function checkoutGit (scope: BuildScope, src: GitSourceRef, commit: string, source: SourceLoc): Promise<{ dir: string, tree: string }> {
  const what = display(src)
  const dir = await mkdtemp(join(scope.dirs.tmp, 'git-'))
  const repo = join(dir, 'repo')
  await mkdir(repo)
  await withRemoteTimeout(scope, what, source, async (signal) => {
    const run = async (args: string[]): Promise<string> => await git(args, { cwd: repo, signal }, what, source)
    await run(['init', '-q'])
    await run(['remote', 'add', 'origin', src.remote])
    // By the name ls-remote resolved, then checked against the commit; a 40-hex ref is fetched whole.
    const named = src.ref !== undefined && COMMIT.test(src.ref) ? [] : [src.ref ?? 'HEAD']
    await run(['fetch', '-q', '--no-tags', ...(named.length > 0 ? ['--depth=1'] : []), 'origin', ...named])
    await run(['-c', 'advice.detachedHead=false', 'checkout', '-q', commit])
    const head = (await run(['rev-parse', 'HEAD'])).trim()
    if (head !== commit) throw new RemoteSourceError(`ADD ${what}: the ref moved while it was fetched (now ${head}, not ${commit})`, source)
  })
  return { dir, tree: src.subdir === undefined ? repo : join(repo, src.subdir) }
}
