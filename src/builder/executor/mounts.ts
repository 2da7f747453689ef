/**
 * RUN --mount on the host side (docs/building.md, "RUN mounts"): each
 * RunMount of the plan becomes a SandboxMount (../sandbox/types.ts) with a
 * host source, and is undone after the step.
 *
 * Terms:
 * - cache dir: `<work dir>/cache-mounts/<hash of scope and id>`, kept on this node
 *   between builds, never in a layer, not part of the step key; counted by
 *   `kiln store df` and the quota beside the snapshots (../snapshots.ts).
 *   The scope (BuildOptions.cacheScope, an agent's requester) keeps one
 *   requester's steps from reading or preparing what another's read.
 *   `locked` takes `<hash>.lock` (a file named by owner, stale when its
 *   process is gone), waiting while another step holds it; `private` uses a
 *   throwaway dir while that lock is held or another step of this process
 *   uses the dir.
 * - throwaway copy: a read-write bind's writes are discarded (BuildKit), and
 *   a driver that cannot make a read-only bind (proot) gets a copy too.
 * - secret: the value `kiln build --secret` gave, written to a private
 *   temp file for the step only; never in a log, a layer or a key.
 */
import { createHash, randomBytes } from 'node:crypto'
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join, posix } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { DirTree, resolveInRoot } from '../../oci/index.ts'
import type { RunMount, RunStep } from '../../recipe/ir.ts'
import { ownerGone, ownerTag } from '../../util/owner.ts'
import { treeDigest } from '../context-files.ts'
import { LOCK_POLL_MS } from '../constants.ts'
import { CopySourceError, SecretNotFoundError } from '../errors.ts'
import { LayerTree } from '../rootfs-view.ts'
import { removeTree } from '../sandbox/index.ts'
import type { SandboxFeatures, SandboxMount } from '../sandbox/index.ts'
import type { BuildScope } from '../stage.ts'
import { copyFromRoot, copyFromTree } from './copy.ts'

/** Cache dirs this process has mounted now, with how many steps use each. */
const inUse = new Map<string, number>()

export interface PreparedMounts {
  mounts: SandboxMount[]
  /** Secret values the step gets as environment variables (`env=`). */
  env: Record<string, string>
  /** Undoes what prepare made: copies, secret files, locks; safe to call twice. */
  release: () => Promise<void>
}

type BindMount = Extract<RunMount, { type: 'bind' }>

/** A bind mount's source as a path in a tree: the context dir's, or a stage's or image's layers. */
async function bindSource (scope: BuildScope, step: RunStep, m: BindMount): Promise<{ host: string, key: string } | { tree: LayerTree, comps: string[], key: string, what: string }> {
  const path = posix.resolve('/', m.source)
  const makeError = (reason: string): CopySourceError => new CopySourceError(`RUN --mount source ${m.source}: ${reason}`, step.source)
  if (m.from.kind === 'context') {
    const { contextDir, contextIgnore } = scope.options
    const tree = new DirTree(contextDir)
    const r = await resolveInRoot(tree, path, { makeError })
    if (r.entry === undefined) throw makeError('not found in the build context')
    const host = tree.path(r.comps)
    return { host, key: `${path}=${await treeDigest(host, contextDir, contextIgnore)}` }
  }
  const from = await copyFromRoot(scope, m.from, step.source)
  const tree = new LayerTree(from.layers)
  const r = await resolveInRoot(tree, path, { makeError })
  if (r.entry === undefined) throw makeError(`not found in ${from.what}`)
  return { tree, comps: r.comps, key: `${path}@${from.key}`, what: from.what }
}

/**
 * What the step key takes from the mounts: the content of what binds show,
 * and the cache scope of a step that mounts a cache (its result depends on
 * the cache dir, which is the scope's own); tmpfs and secrets add nothing.
 */
export async function mountKeyInputs (scope: BuildScope, step: RunStep): Promise<string[]> {
  const out: string[] = []
  for (const m of step.mounts ?? []) if (m.type === 'bind') out.push(`bind:${(await bindSource(scope, step, m)).key}`)
  const cacheScope = scope.options.cacheScope ?? ''
  if (cacheScope !== '' && (step.mounts ?? []).some(m => m.type === 'cache')) out.push(`cache-scope:${cacheScope}`)
  return out
}

/** The dir of a cache mount: the id alone for the node's own builds (as before scopes), else the scope and the id. */
export function cacheMountDir (cacheMounts: string, cacheScope: string, id: string): string {
  const name = cacheScope === '' ? id : `${cacheScope}\u0000${id}`
  return join(cacheMounts, createHash('sha256').update(name).digest('hex').slice(0, 32))
}

async function takeLock (file: string, wait: boolean, signal?: AbortSignal): Promise<(() => Promise<void>) | undefined> {
  const name = `${ownerTag()}-${randomBytes(4).toString('hex')}`
  for (;;) {
    try {
      await writeFile(file, name, { flag: 'wx', mode: 0o600 })
      return async () => { await rm(file, { force: true }) }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const holder = await readFile(file, 'utf8').catch(() => '')
    if (holder !== '' && ownerGone(holder)) { await rm(file, { force: true }); continue }
    if (!wait) return undefined
    await sleep(LOCK_POLL_MS, undefined, signal !== undefined ? { signal } : {})
  }
}

/** Prepares the step's mounts; on failure undoes what it made. */
export async function prepareMounts (scope: BuildScope, step: RunStep, features: SandboxFeatures): Promise<PreparedMounts> {
  const mounts: SandboxMount[] = []
  const env: Record<string, string> = {}
  const undo: Array<() => Promise<void>> = []
  const release = async (): Promise<void> => { for (const u of undo.splice(0).reverse()) await u().catch(() => {}) }
  const temp = async (): Promise<string> => {
    const dir = await mkdtemp(join(scope.dirs.tmp, 'mount-'))
    undo.push(async () => { await removeTree(dir) })
    return dir
  }
  /** A read-only view of `host`: itself where the driver can, else a throwaway copy. */
  const view = async (host: string, readOnly: boolean): Promise<{ source: string, readOnly: boolean }> => {
    if (!readOnly || features.readOnlyMounts) return { source: host, readOnly }
    const copy = join(await temp(), 'copy')
    await cp(host, copy, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true })
    return { source: copy, readOnly: false }
  }
  try {
    for (const m of step.mounts ?? []) {
      if (m.type === 'tmpfs') {
        mounts.push({ kind: 'tmpfs', target: m.target, ...(m.size !== undefined ? { sizeBytes: m.size } : {}) })
      } else if (m.type === 'bind') {
        const src = await bindSource(scope, step, m)
        let host: string
        if ('host' in src && !m.readWrite) host = src.host
        else {
          // A rw bind writes to a copy, and a stage's tree is merged from its layer dirs into one.
          host = join(await temp(), 'src')
          if ('host' in src) await cp(src.host, host, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true })
          else {
            const entry = await src.tree.entry(src.comps)
            if (entry === undefined) throw new CopySourceError(`RUN --mount source ${m.source} not found in ${src.what}`, step.source)
            await copyFromTree(src.tree, src.comps, entry, host)
          }
        }
        mounts.push({ kind: 'bind', target: m.target, ...(m.readWrite ? { source: host, readOnly: false } : await view(host, true)) })
      } else if (m.type === 'cache') {
        const root = cacheMountDir(scope.dirs.cacheMounts, scope.options.cacheScope ?? '', m.id)
        const lock = m.sharing === 'shared' ? undefined : await takeLock(`${root}.lock`, m.sharing === 'locked', scope.options.signal)
        let dir = root
        if (lock !== undefined) undo.push(lock)
        if (m.sharing === 'private' && (lock === undefined || (inUse.get(root) ?? 0) > 0)) dir = join(await temp(), 'cache')
        inUse.set(dir, (inUse.get(dir) ?? 0) + 1)
        undo.push(async () => { const n = (inUse.get(dir) ?? 1) - 1; if (n === 0) inUse.delete(dir); else inUse.set(dir, n) })
        if (!(await readdir(dir).then(() => true, () => false))) {
          await mkdir(dir, { recursive: true })
          await chmod(dir, m.mode)
        }
        mounts.push({ kind: 'bind', target: m.target, ...(await view(dir, m.readOnly)) })
      } else {
        const value = scope.options.secrets?.[m.id]
        if (value === undefined) {
          if (m.required) throw new SecretNotFoundError(`RUN --mount=type=secret,id=${m.id}: the build has no secret '${m.id}' (kiln build --secret id=${m.id},src=FILE)`, step.source)
          continue
        }
        if (m.env !== undefined) env[m.env] = Buffer.from(value).toString()
        if (m.env === undefined || m.target !== undefined) {
          const file = join(await temp(), 'secret')
          await writeFile(file, value, { mode: 0o600 })
          await chmod(file, m.mode)
          mounts.push({ kind: 'bind', target: m.target ?? `/run/secrets/${m.id}`, ...(await view(file, true)) })
        }
      }
    }
  } catch (err) {
    await release()
    throw err
  }
  return { mounts, env, release }
}
