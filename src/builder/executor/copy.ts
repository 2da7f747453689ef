/**
 * COPY/ADD and the Apptainer front end's files: the sources are gathered
 * (context files, a stage's or an image's tree, inline heredocs) and placed
 * in a fresh upper dir, resolved in the stage's root (src/oci/layer/in-root.ts)
 * so that no link on the way leads out; the snapshotter commits the dir.
 * ADD also fetches URLs (./url-source.ts) and git repositories
 * (./git-source.ts). --exclude patterns (.dockerignore syntax, one
 * implementation: ../context) match a path relative to the source as named
 * (a file's own name; for a directory, paths inside it); --parents keeps a
 * source's parent dirs below the destination, those after a `/./` if the
 * source has one (docs/building.md, "COPY").
 */
import { createReadStream } from 'node:fs'
import { chmod, copyFile, cp, lstat, readdir, realpath, rm, mkdir, utimes, writeFile } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { basename, join, posix, relative, sep } from 'node:path'
import type { Digest } from '../../content/index.ts'
import { resolveInRoot } from '../../oci/index.ts'
import type { LayerEntry, TreeEntry } from '../../oci/index.ts'
import type { CopyFrom, CopyStep, FileStep, SourceLoc } from '../../recipe/ir.ts'
import { archiveLayerEntries, extractArchive, isTarArchive } from '../add-archive.ts'
import { resolveBase, unpackedBase } from '../base.ts'
import { parseIgnoreFile } from '../context/index.ts'
import type { IgnoreRules } from '../context/index.ts'
import { contextCopyFilter, expandSource, treeDigest } from '../context-files.ts'
import { CopySourceError } from '../errors.ts'
import { ownersOfLayers, tarOwners, withArchiveOwners, withCopiedOwners } from '../owner-ledger.ts'
import type { LayerOwners, Recorded } from '../owner-ledger.ts'
import { resolveOwner, withMode, withOwner } from '../ownership.ts'
import type { OwnedTree } from '../ownership.ts'
import { LayerTree } from '../rootfs-view.ts'
import { removeTree } from '../sandbox/index.ts'
import { newUpper, stageDirs } from '../snapshotter/index.ts'
import type { Snapshotter } from '../snapshotter/index.ts'
import type { BuildScope, StageState } from '../stage.ts'
import { checkoutGit, gitSource } from './git-source.ts'
import type { GitSourceRef } from './git-source.ts'
import { urlSource } from './url-source.ts'

/** `parents`: with --parents, the components kept below the destination (the item's own name last). */
type CopyItem = { parents?: string[] } & (
  | { kind: 'host', path: string, name: string, isDir: boolean }
  | { kind: 'inline', name: string, content: string, isDir: false }
  | { kind: 'layers', tree: LayerTree, comps: string[], entry: TreeEntry, name: string, isDir: boolean, ownerLayers: string[] }
  | { kind: 'blob', digest: Digest, name: string, mtime?: Date, isDir: false }
  | { kind: 'git', src: GitSourceRef, commit: string, name: string, isDir: true })

/** A COPY's sources, gathered before its key is made: `digests` name their content for the key. */
export interface CopyInputs { items: CopyItem[], digests: string[] }

/** The layer dirs of a `--from` stage or image (COPY, RUN --mount), and the key that stands for their content. */
export async function copyFromRoot (scope: BuildScope, from: CopyFrom, source: SourceLoc): Promise<{ layers: string[], key: string, what: string, ownerLayers: string[] }> {
  if (from.kind === 'image') {
    const image = await resolveBase(scope.resolver, from.ref, scope.platform, source)
    return { layers: [await unpackedBase(scope.store, image, scope.dirs.rootfs, scope.options.signal)], key: image.manifestDigest ?? 'scratch', what: `image ${from.ref}`, ownerLayers: (image.manifest?.layers ?? []).map(l => l.digest) }
  }
  if (from.kind !== 'stage') throw new CopySourceError('--from names neither a stage nor an image', source)
  const state = scope.states.get(from.stage)
  if (state === undefined) throw new CopySourceError(`--from names stage ${from.stage}, which has not been built`, source)
  return { layers: await stageDirs(scope, state), key: state.key, what: `stage ${from.stage}`, ownerLayers: state.layers.map(l => l.digest) }
}

/** The components of `rel` that --parents keeps: all, or those after the `/./` pivot in the pattern. */
function keptParents (pattern: string, rel: string): string[] {
  const comps = rel.split('/').filter(c => c !== '' && c !== '.')
  const pivot = pattern.indexOf('/./')
  if (pivot < 0) return comps
  return comps.slice(posix.normalize(pattern.slice(0, pivot)).split('/').filter(c => c !== '' && c !== '.').length)
}

function excludeRules (step: CopyStep): IgnoreRules | undefined {
  return step.exclude === undefined ? undefined : parseIgnoreFile(step.exclude.join('\n'), '--exclude')
}

export async function copyInputs (scope: BuildScope, step: CopyStep): Promise<CopyInputs> {
  const { contextDir, contextIgnore } = scope.options
  const items: CopyItem[] = []
  const digests: string[] = []
  const exclude = excludeRules(step)
  for (const src of step.sources) {
    if (src.kind === 'inline') { items.push({ kind: 'inline', name: src.name, content: src.content, isDir: false }); continue }
    if (src.kind === 'url') {
      const blob = await urlSource(scope, src, step.source)
      items.push({ kind: 'blob', digest: blob.digest, name: blob.name, ...(blob.mtime === undefined ? {} : { mtime: blob.mtime }), isDir: false })
      digests.push(blob.input)
      continue
    }
    if (src.kind === 'git') {
      const { commit, input } = await gitSource(scope, src, step.source)
      items.push({ kind: 'git', src, commit, name: '', isDir: true })
      digests.push(input)
      continue
    }
    if (step.from.kind === 'context') {
      const realRoot = await realpath(contextDir)
      for (const p of await expandSource(contextDir, src.path, step.source, contextIgnore)) {
        if (exclude?.excludes(basename(p)) === true) continue
        const isDir = (await lstat(p)).isDirectory()
        const parents = step.parents === true ? { parents: keptParents(src.path, relative(realRoot, p).split(sep).join('/')) } : {}
        items.push({ kind: 'host', path: p, name: basename(p), isDir, ...parents })
        digests.push(`${src.path}=${await treeDigest(p, contextDir, contextIgnore)}`)
      }
    } else {
      const from = await copyFromRoot(scope, step.from, step.source)
      const tree = new LayerTree(from.layers)
      // Docker follows a symlink source, the last component included, inside the stage's root.
      const found = await resolveInRoot(tree, posix.resolve('/', src.path), {
        makeError: reason => new CopySourceError(`COPY source ${src.path} in ${from.what}: ${reason}`, step.source)
      })
      if (found.entry === undefined) throw new CopySourceError(`COPY source ${src.path} not found in ${from.what}`, step.source)
      const name = posix.basename(posix.resolve('/', src.path))
      if (exclude?.excludes(name) === true) continue
      const parents = step.parents === true ? { parents: keptParents(src.path, posix.resolve('/', src.path)) } : {}
      items.push({ kind: 'layers', tree, comps: found.comps, entry: found.entry, name, isDir: found.entry.st.isDirectory(), ownerLayers: from.ownerLayers, ...parents })
      digests.push(`${src.path}@${from.key}`)
    }
  }
  return { items, digests }
}

/**
 * `ADD archive.tar /` as a stage's first filesystem change (FROM scratch):
 * the layer's entries come from the archive's headers, and the layer is
 * written from the archive itself, with no extraction (../add-archive.ts,
 * `archiveLayerEntries`). Undefined when the step is anything else, or the
 * archive needs extracting to say what its layer is.
 */
async function streamedArchive (st: StageState, step: CopyStep, inputs: CopyInputs, signal?: AbortSignal): Promise<LayerEntry[] | undefined> {
  const item = inputs.items[0]
  if (!step.add || inputs.items.length !== 1 || item?.kind !== 'host' || item.isDir || item.parents !== undefined) return undefined
  if (step.chown !== undefined || step.chmod !== undefined || st.layers.length > 0 || st.uppers.length > 0) return undefined
  if (posix.resolve(st.config.WorkingDir ?? '/', step.dest) !== '/' || !(await lstat(item.path)).isFile() || !await isTarArchive(item.path)) return undefined
  return await archiveLayerEntries(item.path, signal)
}

export async function copyStep (scope: BuildScope, snap: Snapshotter, st: StageState, step: CopyStep, key: Digest, inputs: CopyInputs): Promise<void> {
  const { options } = scope
  const streamed = await streamedArchive(st, step, inputs, options.signal)
  if (streamed !== undefined) {
    await snap.commitEntries(st, step, key, streamed)
    return
  }
  const { dir, upper } = await newUpper(scope)
  try {
    const below = new LayerTree(await stageDirs(scope, st))
    const dest = await resolveInRoot(below, posix.resolve(st.config.WorkingDir ?? '/', step.dest), {
      makeError: reason => new CopySourceError(`COPY destination ${step.dest}: ${reason}`, step.source)
    })
    // `.` and `..` (alone or last) name a directory as `DIR/` does: `WORKDIR /src` then `COPY hello.c .` copies into /src even before it exists (BuildKit).
    const destIsDir = inputs.items.length > 1 || step.parents === true || step.dest.endsWith('/') || /(^|\/)\.\.?$/.test(step.dest) || dest.comps.length === 0 || dest.entry?.st.isDirectory() === true
    const contextFilter = contextCopyFilter(options.contextDir, options.contextIgnore)
    const exclude = excludeRules(step)
    const owner = step.chown === undefined ? undefined : await resolveOwner(step.chown, below, step.source)
    /** What the step copies, as paths of the upper dir: --chown applies there and nowhere else (not to parents it repeats). */
    const copied: OwnedTree[] = []
    /** Archives ADD extracted, where (a path of the upper dir) and the owners their headers give. */
    const archives: Array<{ prefix: string, owners: LayerOwners }> = []
    /** Sources COPY --from took from a stage or image: where they landed, and their owners there (Docker keeps them). */
    const fromOwners: Array<{ at: string, src: string, isDir: boolean, owners: ReadonlyMap<string, Recorded> }> = []
    const inUpper = (at: string): string => relative(upper, at).split(sep).join('/')
    for (const item of inputs.items) {
      if (item.kind === 'host' && step.add && !item.isDir && await isTarArchive(item.path)) {
        // Docker: a local archive is unpacked into the destination directory.
        const into = await placeInUpper(upper, below, dest.comps, undefined)
        try {
          await extractArchive(item.path, into, options.signal)
          copied.push({ path: inUpper(into), childrenOnly: true })
          archives.push({ prefix: inUpper(into), owners: await tarOwners(createReadStream(item.path)) })
        } catch (err) {
          options.signal?.throwIfAborted()
          throw new CopySourceError(`ADD ${basename(item.path)}: cannot extract the archive: ${(err as Error).message}`, step.source)
        }
        continue
      }
      const target = item.parents !== undefined ? [...dest.comps, ...item.parents] : destIsDir && !item.isDir ? [...dest.comps, item.name] : dest.comps
      const at = await placeInUpper(upper, below, item.isDir ? target : target.slice(0, -1), item.isDir ? undefined : target[target.length - 1])
      if (item.kind === 'host') {
        const from = item.path
        const keep = exclude === undefined ? contextFilter : async (s: string): Promise<boolean> => (s === from || !exclude.excludes(relative(from, s).split(sep).join('/'))) && await contextFilter(s)
        await cp(from, at, { recursive: true, verbatimSymlinks: true, force: true, preserveTimestamps: true, filter: keep })
      } else if (item.kind === 'inline') await writeFile(at, item.content, { mode: 0o644, flag: 'wx' })
      else if (item.kind === 'blob') await placeBlob(scope, item, at)
      else if (item.kind === 'git') await placeGit(scope, step, item, at)
      else {
        await copyFromTree(item.tree, item.comps, item.entry, at, exclude)
        fromOwners.push({ at: inUpper(at), src: item.comps.join('/'), isDir: item.isDir, owners: await ownersOfLayers(scope.store, item.ownerLayers, options.signal) })
      }
      if (step.chmod !== undefined) await chmodTree(at, parseInt(step.chmod, 8))
      // A directory's contents go into the destination: that directory is the copy's own only when the step makes it.
      copied.push({ path: inUpper(at), childrenOnly: item.isDir && dest.entry !== undefined })
    }
    await snap.commit(st, step, key, upper, entries => {
      const fromArchives = archives.reduce((e, a) => withArchiveOwners(e, a.prefix, a.owners), entries)
      const kept = fromOwners.reduce((e, f) => withCopiedOwners(e, f.at, f.src, f.isDir, f.owners), fromArchives)
      const moded = step.chmod === undefined ? kept : withMode(kept, copied, parseInt(step.chmod, 8))
      return owner === undefined ? moded : withOwner(moded, copied, owner)
    })
  } finally {
    await removeTree(dir)
  }
}

export async function fileStep (scope: BuildScope, snap: Snapshotter, st: StageState, step: FileStep, key: Digest): Promise<void> {
  const { dir, upper } = await newUpper(scope)
  try {
    const below = new LayerTree(await stageDirs(scope, st))
    const parent = await resolveInRoot(below, posix.dirname(posix.resolve('/', step.path)), {
      makeError: reason => new CopySourceError(`cannot write ${step.path}: ${reason}`, step.source)
    })
    const at = await placeInUpper(upper, below, parent.comps, posix.basename(step.path))
    await writeFile(at, step.content, { mode: step.mode, flag: 'wx' })
    await chmod(at, step.mode)
    await snap.commit(st, step, key, upper)
  } finally {
    await removeTree(dir)
  }
}

async function lstatIn (path: string): Promise<Stats | undefined> {
  return await lstat(path).catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return undefined; throw err })
}

/**
 * Makes `dirs` (resolved components of the stage) real directories in a
 * step's upper dir, with the modes the stage below has for them, and clears
 * the place of `name` inside: the host path returned is then written with no
 * link anywhere on it. A non-directory an earlier item of the same step left
 * on the way is replaced, as a later COPY source replaces an earlier one.
 */
async function placeInUpper (upper: string, below: LayerTree, dirs: readonly string[], name: string | undefined): Promise<string> {
  let at = upper
  for (let i = 0; i < dirs.length; i++) {
    at = join(at, dirs[i] as string)
    const here = await lstatIn(at)
    if (here?.isDirectory() === true) continue
    if (here !== undefined) await rm(at, { recursive: true, force: true })
    const was = await below.entry(dirs.slice(0, i + 1))
    await mkdir(at, { mode: was?.st.isDirectory() === true ? was.st.mode & 0o7777 : 0o755 })
  }
  if (name === undefined) return at
  const file = join(at, name)
  const here = await lstatIn(file)
  if (here !== undefined && !here.isDirectory()) await rm(file, { force: true })
  return file
}

/** A downloaded file: Docker gives it mode 0600 and the server's Last-Modified as mtime. */
async function placeBlob (scope: BuildScope, item: Extract<CopyItem, { kind: 'blob' }>, at: string): Promise<void> {
  await copyFile(await scope.store.path(item.digest), at)
  await chmod(at, 0o600)
  if (item.mtime !== undefined) await utimes(at, item.mtime, item.mtime)
}

/** A git tree, cloned for this step into the build's tmp dir and removed after. */
async function placeGit (scope: BuildScope, step: CopyStep, item: Extract<CopyItem, { kind: 'git' }>, at: string): Promise<void> {
  const { dir, tree } = await checkoutGit(scope, item.src, item.commit, step.source)
  try {
    const repo = await realpath(join(dir, 'repo'))
    const real = await realpath(tree).catch(() => undefined)
    if (real === undefined || (real !== repo && !real.startsWith(repo + sep)) || !(await lstat(real)).isDirectory()) {
      throw new CopySourceError(`ADD ${item.src.remote}: ${item.src.subdir ?? ''} is not a directory of the repository`, step.source)
    }
    const gitDir = join(repo, '.git')
    await cp(real, at, { recursive: true, verbatimSymlinks: true, force: true, filter: s => item.src.keepGitDir || s !== gitDir })
  } finally {
    await removeTree(dir)
  }
}

/**
 * Copies an entry of a stage (and, for a directory, the merged tree below it)
 * to a host path made by placeInUpper, leaving out what `exclude` matches
 * (paths relative to the entry).
 */
export async function copyFromTree (tree: LayerTree, comps: string[], entry: TreeEntry, dest: string, exclude?: IgnoreRules, rel = ''): Promise<void> {
  if (!entry.st.isDirectory()) {
    const here = await lstatIn(dest)
    if (here !== undefined) await rm(dest, { recursive: true, force: true })
    await cp(entry.host, dest, { verbatimSymlinks: true, force: true, preserveTimestamps: true })
    return
  }
  const here = await lstatIn(dest)
  if (here !== undefined && !here.isDirectory()) await rm(dest, { force: true })
  if (here?.isDirectory() !== true) await mkdir(dest, { mode: entry.st.mode & 0o7777 })
  for (const name of await tree.list(comps)) {
    const child = [...comps, name]
    const childRel = rel === '' ? name : `${rel}/${name}`
    if (exclude?.excludes(childRel) === true) continue
    const e = await tree.entry(child)
    if (e !== undefined) await copyFromTree(tree, child, e, join(dest, name), exclude, childRel)
  }
}

/**
 * `--chmod` on everything copied, on disk: with the owner's read bit (and a
 * dir's write and search bits) kept, which kiln needs to read the copy back
 * into the layer and to remove it. A mode such as 0640 on a dir would take
 * them away; the layer gets the exact bits (withMode).
 */
async function chmodTree (path: string, mode: number): Promise<void> {
  const st = await lstat(path)
  if (st.isSymbolicLink()) return
  await chmod(path, mode | (st.isDirectory() ? 0o700 : 0o400))
  if (st.isDirectory()) for (const name of await readdir(path)) await chmodTree(join(path, name), mode)
}
