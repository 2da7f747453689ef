/**
 * The builder: executes a BuildPlan stage by stage. Each filesystem step
 * (RUN, COPY/ADD, Apptainer files) produces one layer; every other step
 * edits the image config.
 *
 * Two ways of finding what a RUN changed, chosen by the sandbox driver:
 * - overlay (bwrap, unshare): the step writes into a fresh overlay upper dir,
 *   which is the change; kept under workDir/snapshots/k-<step key> it is a
 *   lower dir for the steps after it while its layer is compressed in the
 *   background.
 * - scan (proot, or any driver on a node without overlay in a user
 *   namespace): the stage has a plain root dir (a copy of the base rootfs
 *   with the stage's layers applied); the step runs in it in place and the
 *   tree is compared with a snapshot taken before (./diff.ts). COPY and
 *   cached steps are applied to that root by extracting their layer.
 * Both give the same layers for the same step (tested: bwrap vs proot).
 */
import { cp, chmod, lstat, mkdir, mkdtemp, rename, rm, stat, writeFile, readdir } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { existsSync } from 'node:fs'
import { basename, join, posix, relative, sep } from 'node:path'
import type { Digest } from '../content/index.ts'
import { digestHex } from '../content/index.ts'
import { encodeJson, formatPlatform, hostPlatform, parsePlatform, resolveInRoot, OCI_CONFIG, OCI_MANIFEST } from '../oci/index.ts'
import type { ImageConfig, Platform, TreeEntry } from '../oci/index.ts'
import { writeLayer } from '../oci/layer/write.ts'
import { extractLayer } from '../oci/layer/extract.ts'
import type { BuildPlan, CopyStep, RunStep, Stage, Step } from '../recipe/ir.ts'
import { resolveBase, unpackedBase } from './base.ts'
import type { BaseResolverInit, ResolvedBase } from './base.ts'
import { createStepCache, stepKey } from './cache.ts'
import type { CachedLayer } from './cache.ts'
import { DEFAULT_PATH, DEFAULT_SOURCE_DATE_EPOCH, FAILED_STEP_OUTPUT_TAIL } from './constants.ts'
import { contextCopyFilter, expandSource, treeDigest } from './context-files.ts'
import { extractArchive, isTarArchive } from './add-archive.ts'
import { diffOverlayUpper, diffSnapshot, snapshotTree } from './diff.ts'
import { PERMISSIONS_ANNOTATION, flattenedBy, resolveOwner, withOwner } from './ownership.ts'
import type { OwnedTree, Owner } from './ownership.ts'
import { BaseImageError, CopySourceError, NetworkNotAllowedError, StepFailedError, UnsupportedStepError } from './errors.ts'
import { instructionSummary, instructionText } from './instruction-text.ts'
import { LayerTree } from './rootfs-view.ts'
import { findOpaqueDirs } from './sandbox/opaque.ts'
import { createSandbox, removeTree } from './sandbox/index.ts'
import { requireTool } from './sandbox/ns-script.ts'
import { runProcess } from './sandbox/process.ts'
import type { Sandbox, SandboxRoot } from './sandbox/index.ts'
import type { BuildEvent, BuildOptions, BuildResult, Builder, BuilderInit, StepReport } from './types.ts'

type Config = NonNullable<ImageConfig['config']>

interface StageBase {
  /** Manifest and config the stage starts from. */
  resolved: ResolvedBase
  /** The image whose unpacked rootfs is the bottom layer (for a stage base: that stage's own base). */
  bottom: ResolvedBase
  key: string
  uppers: string[]
  /** Scan mode, a stage built on a stage: that stage's root dir, holding its first `rootLayers` layers. */
  root?: string
  rootLayers?: number
}

interface StageState {
  stage: Stage
  base: StageBase
  key: string
  config: Config
  diffIds: Digest[]
  layers: Array<CachedLayer['descriptor']>
  history: NonNullable<ImageConfig['history']>
  /** Step snapshot dirs, top-most first (the base rootfs comes after, lazily). */
  uppers: string[]
  /** Scan mode: the stage's plain root dir, the base with every layer so far applied. */
  root?: string
}

function envMap (env: readonly string[] | null | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const kv of env ?? []) { const i = kv.indexOf('='); if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1) }
  return out
}

function setEnv (config: Config, key: string, value: string): void {
  const env = (config.Env ?? []).filter(kv => !kv.startsWith(`${key}=`))
  env.push(`${key}=${value}`)
  config.Env = env
}

const exists = async (p: string): Promise<boolean> => await stat(p).then(() => true, () => false)

export function createBuilder (init: BuilderInit): Builder {
  const { store, refs, workDir } = init
  const cache = createStepCache(init.db)
  const dirs = { rootfs: join(workDir, 'rootfs'), snapshots: join(workDir, 'snapshots'), tmp: join(workDir, 'tmp') }
  let sandboxPromise: Promise<Sandbox> | undefined
  const sandbox = async (): Promise<Sandbox> => {
    sandboxPromise ??= init.sandbox !== undefined
      ? Promise.resolve(init.sandbox)
      : createSandbox({ ...(init.sandboxDriver !== undefined ? { driver: init.sandboxDriver } : {}), ...(init.probeCacheDir !== undefined ? { probeCacheDir: init.probeCacheDir } : {}) })
    return await sandboxPromise
  }

  const build = async (plan: BuildPlan, options: BuildOptions): Promise<BuildResult> => {
    const started = performance.now()
    const platform: Platform = options.platform === undefined ? hostPlatform() : parsePlatform(options.platform)
    const epoch = options.sourceDateEpoch ?? DEFAULT_SOURCE_DATE_EPOCH
    const created = new Date(epoch * 1000).toISOString().replace('.000Z', 'Z')
    const emit = (e: BuildEvent): void => { options.onEvent?.(e) }
    const stageNames = (index: number): string | undefined => plan.stages.find(s => s.index === index)?.name
    const textOf = (step: Step): string => instructionText(step, stageNames)
    const runSteps = plan.stages.flatMap(s => s.steps.filter((x): x is RunStep => x.op === 'run'))
    const allowNetwork = options.network === true
    const asking = runSteps.find(s => s.network === 'default')
    if (asking !== undefined && !allowNetwork) {
      throw new NetworkNotAllowedError(asking.source, 'RUN --network=default asks for the network, which this build does not allow: rerun with kiln build --network (an agent allows it with agent.allowNetwork in kiln.yaml)')
    }
    /** The network a RUN gets: it asked (Apptainer %post has no way to ask: the build's --network is the ask) and the build allows it. */
    const networkFor = (step: RunStep): boolean => allowNetwork && (step.network === 'default' || (plan.frontend === 'apptainer' && step.network === undefined))
    for (const d of Object.values(dirs)) await mkdir(d, { recursive: true, mode: 0o700 })
    /** Scan mode (see the top of this file), decided once by the driver that would run RUN steps. */
    let scanMode: boolean | undefined
    const scanning = async (): Promise<boolean> => {
      if (scanMode !== undefined) return scanMode
      if (runSteps.length === 0) return (scanMode = false)
      // A probe failure surfaces when a RUN has to run; until then the overlay path (no sandbox needed) serves.
      scanMode = await sandbox().then(s => !s.features.overlay, () => false)
      return scanMode
    }
    /** Plain root dirs made for scan mode, removed when the build ends. */
    const roots: string[] = []
    let warnedNetwork = false
    let warnedRoot = false
    /** Why the image's owners are not what the recipe made (the first step that loses them), told once. */
    let flattened: string | undefined
    const flatten = (why: string | undefined): void => {
      if (why === undefined || flattened !== undefined) return
      flattened = why
      emit({ type: 'warning', message: `file ownership is not kept: ${why}; the image is annotated ${PERMISSIONS_ANNOTATION}=flattened (docs/building.md, "Ownership")` })
    }
    flatten(flattenedBy(plan))
    const states = new Map<number, StageState>()
    const steps: StepReport[] = []
    const total = plan.stages.reduce((n, s) => n + s.steps.length, 0)
    let n = 0
    let driverUsed: string | undefined
    /** Filesystem steps that missed the cache: config steps count as cached only when none did. */
    let misses = 0

    const lowersOf = async (st: StageState): Promise<string[]> => st.root !== undefined
      ? [st.root]
      : [...st.uppers, await unpackedBase(store, st.base.bottom, dirs.rootfs, options.signal)]

    const applyLayer = async (root: string, layer: CachedLayer['descriptor']): Promise<void> => {
      await extractLayer(store.read(layer.digest, { signal: options.signal }), root, { signal: options.signal })
    }

    /** Scan mode: the stage's plain root, made on first use from its base and the layers it has so far. */
    const ensureRoot = async (st: StageState): Promise<string> => {
      if (st.root !== undefined) return st.root
      const dir = await mkdtemp(join(dirs.tmp, 'root-'))
      roots.push(dir)
      const root = join(dir, 'rootfs')
      const from = st.base.root ?? await unpackedBase(store, st.base.bottom, dirs.rootfs, options.signal)
      await copyTree(from, root)
      const have = st.base.root !== undefined ? st.base.rootLayers ?? 0 : st.base.bottom.manifest?.layers.length ?? 0
      for (const l of st.layers.slice(have)) await applyLayer(root, l)
      st.root = root
      return root
    }

    /** Snapshot dirs are named by step key: a step's snapshot is a lower dir before its layer is even written. */
    const snapshotDir = (key: Digest): string => join(dirs.snapshots, `k-${digestHex(key)}`)

    const keepSnapshot = async (upper: string, key: Digest): Promise<string> => {
      const dest = snapshotDir(key)
      if (await exists(dest)) { await removeTree(upper); return dest }
      await rename(upper, dest).catch(async () => { await removeTree(upper) })
      return dest
    }

    const storeLayer = async (st: StageState, step: Step, key: Digest, entries: Parameters<typeof writeLayer>[1]): Promise<CachedLayer> => {
      const value = await writeAndRemember(key, entries)
      pushLayer(st, step, value)
      return value
    }

    const writeAndRemember = async (key: Digest, entries: Parameters<typeof writeLayer>[1]): Promise<CachedLayer> => {
      const layer = await writeLayer(store, entries, { sourceDateEpoch: epoch, signal: options.signal })
      const value: CachedLayer = { descriptor: { mediaType: layer.descriptor.mediaType, digest: layer.descriptor.digest, size: layer.descriptor.size }, diffId: layer.diffId }
      cache.put(key, value)
      return value
    }

    /**
     * Layer writes of overlay steps run in the background: the next step
     * needs only the snapshot dir, and compressing (zlib, on libuv's thread
     * pool) overlaps with it. Slots are filled in as writes finish; every
     * reader of st.layers waits for `settled()` first.
     */
    const pending: Array<Promise<void>> = []
    const settled = async (): Promise<void> => { await Promise.all(pending) }
    const deferLayer = (st: StageState, step: Step, key: Digest, entries: Parameters<typeof writeLayer>[1]): void => {
      const i = st.layers.length
      pushLayer(st, step, { descriptor: { mediaType: '', digest: key, size: 0 }, diffId: key })
      const p = writeAndRemember(key, entries).then(v => { st.layers[i] = v.descriptor; st.diffIds[i] = v.diffId })
      p.catch(() => {}) // awaited (and rethrown) by settled()
      pending.push(p)
    }

    /** Overlay-style change dir -> layer, kept as a snapshot; in scan mode written at once and applied to the stage root. */
    const commitLayer = async (st: StageState, step: Step, key: Digest, upper: string, lowers: string[] | undefined, owned?: { trees: OwnedTree[], owner: Owner }): Promise<void> => {
      const below = lowers === undefined ? undefined : new LayerTree(lowers)
      const diff = async (dir: string): Promise<Parameters<typeof writeLayer>[1]> => {
        const entries = await diffOverlayUpper(dir, {
          opaqueDirs: findOpaqueDirs,
          inLowers: async p => (await below?.entry(p.split('/')))?.st.isDirectory() === true
        })
        return owned === undefined ? entries : withOwner(entries, owned.trees, owned.owner)
      }
      if (st.root !== undefined) {
        const value = await storeLayer(st, step, key, await diff(upper))
        await applyLayer(st.root, value.descriptor)
        await keepSnapshot(upper, key)
        return
      }
      const snap = await keepSnapshot(upper, key)
      st.uppers.unshift(snap)
      deferLayer(st, step, key, await diff(snap))
    }

    const pushLayer = (st: StageState, step: Step, v: CachedLayer): void => {
      st.layers.push(v.descriptor)
      st.diffIds.push(v.diffId)
      st.history.push({ created, created_by: textOf(step), comment: 'kiln' })
    }

    /** A cache hit counts while its blob exists and, for overlay builds, its snapshot dir (a lower dir for later steps). */
    const tryCache = async (st: StageState, step: Step, key: Digest): Promise<boolean> => {
      if (options.noCache === true) return false
      let hit = cache.get(key)
      if (hit === undefined || !await store.has(hit.descriptor.digest)) {
        hit = await askRemote(st, key)
        if (hit === undefined) return false
      }
      if (st.root !== undefined) {
        await applyLayer(st.root, hit.descriptor)
      } else {
        // The builder's own snapshot (by step key), or one made for the layer itself (by diffID: imported caches, src/export).
        const snap = [snapshotDir(key), join(dirs.snapshots, digestHex(hit.diffId))]
        const found = await exists(snap[0] as string) ? snap[0] : await exists(snap[1] as string) ? snap[1] : undefined
        if (found === undefined) return false
        st.uppers.unshift(found)
      }
      pushLayer(st, step, hit)
      return true
    }

    /** Stages whose chain of keys left what the remote cache knows (see RemoteStepCache). */
    const remoteMissed = new Set<StageState>()
    const askRemote = async (st: StageState, key: Digest): Promise<CachedLayer | undefined> => {
      if (init.remoteCache === undefined || remoteMissed.has(st)) return undefined
      const hit = await init.remoteCache.lookup(key, { snapshotsDir: dirs.snapshots, ...(options.signal !== undefined ? { signal: options.signal } : {}) }).catch(() => undefined)
      if (hit === undefined) { remoteMissed.add(st); return undefined }
      cache.put(key, hit)
      return hit
    }

    const newUpper = async (): Promise<{ dir: string, upper: string, work: string }> => {
      const dir = await mkdtemp(join(dirs.tmp, 'step-'))
      const upper = join(dir, 'upper'); const work = join(dir, 'work')
      await mkdir(upper); await mkdir(work)
      return { dir, upper, work }
    }

    const runStep = async (st: StageState, step: RunStep, key: Digest): Promise<void> => {
      const host = hostPlatform()
      if (platform.architecture !== host.architecture && !binfmtFor(platform.architecture)) {
        throw new UnsupportedStepError(`RUN for ${formatPlatform(platform)} needs an emulator registered in /proc/sys/fs/binfmt_misc (this node is ${formatPlatform(host)}); build on a ${platform.architecture} node or register qemu-user-static`, step.source)
      }
      const sb = await sandbox()
      driverUsed = sb.driver
      const network = networkFor(step)
      if (!network && !sb.features.networkIsolation && !warnedNetwork) {
        warnedNetwork = true
        emit({ type: 'warning', message: `the ${sb.driver} driver cannot cut RUN steps off the network: they see the host's network (kiln doctor shows the drivers that can)` })
      }
      if (!sb.features.rootEmulation && !warnedRoot) {
        warnedRoot = true
        emit({ type: 'warning', message: `the ${sb.driver} driver has no root emulation: chown, setuid and setgroups to other ids fail in RUN steps (apt-get, useradd); bwrap has it (docs/building.md, "Root emulation")` })
      }
      const argv = step.command.form === 'exec' ? step.command.argv
        : step.command.form === 'shell' ? [...step.shell, step.command.script]
          : [...step.shell, `f=$(mktemp) && cat > "$f" <<'KILN_SHEBANG_EOF'\n${step.command.content}\nKILN_SHEBANG_EOF\nchmod +x "$f" && "$f"; rc=$?; rm -f "$f"; exit $rc`]
      const env: Record<string, string> = { PATH: DEFAULT_PATH, ...step.env, ...envMap(st.config.Env) }
      let tail = ''
      const run = async (root: SandboxRoot): Promise<void> => {
        const r = await sb.run({
          argv, env, cwd: st.config.WorkingDir !== undefined && st.config.WorkingDir !== '' ? st.config.WorkingDir : '/',
          root,
          network,
          timeoutMs: options.stepTimeoutMs,
          signal: options.signal,
          onOutput: (stream, chunk) => {
            tail = (tail + Buffer.from(chunk).toString()).slice(-FAILED_STEP_OUTPUT_TAIL)
            emit({ type: 'output', stream, chunk })
          }
        })
        const text = instructionSummary(textOf(step))
        if (r.timedOut) throw new StepFailedError(step.source, `RUN timed out after ${String(options.stepTimeoutMs)} ms: ${text}`, null, tail)
        if (r.exitCode !== 0) throw new StepFailedError(step.source, `RUN failed with ${r.exitCode === null ? `signal ${String(r.signal)}` : `exit code ${r.exitCode}`}: ${text}`, r.exitCode, tail)
      }
      if (st.root !== undefined) {
        const before = await snapshotTree(st.root)
        await run({ kind: 'dir', path: st.root })
        await storeLayer(st, step, key, await diffSnapshot(st.root, before))
        return
      }
      const lowers = await lowersOf(st)
      const { dir, upper, work } = await newUpper()
      try {
        await run({ kind: 'overlay', lowers, upper, work })
        await commitLayer(st, step, key, upper, lowers)
      } finally {
        await removeTree(dir)
      }
    }

    const copyStep = async (st: StageState, step: CopyStep, key: Digest, inputs: CopyInputs): Promise<void> => {
      const { dir, upper } = await newUpper()
      try {
        const below = new LayerTree(await lowersOf(st))
        const dest = await resolveInRoot(below, posix.resolve(st.config.WorkingDir ?? '/', step.dest), {
          makeError: reason => new CopySourceError(`COPY destination ${step.dest}: ${reason}`, step.source)
        })
        const destIsDir = inputs.items.length > 1 || step.dest.endsWith('/') || dest.comps.length === 0 || dest.entry?.st.isDirectory() === true
        const contextFilter = contextCopyFilter(options.contextDir, options.contextIgnore)
        const owner = step.chown === undefined ? undefined : await resolveOwner(step.chown, below, step.source)
        /** What the step copies, as paths of the upper dir: --chown applies there and nowhere else (not to parents it repeats). */
        const copied: OwnedTree[] = []
        const inUpper = (at: string): string => relative(upper, at).split(sep).join('/')
        for (const item of inputs.items) {
          if (item.kind === 'host' && step.add && !item.isDir && await isTarArchive(item.path)) {
            // Docker: a local archive is unpacked into the destination directory.
            const into = await placeInUpper(upper, below, dest.comps, undefined)
            try {
              await extractArchive(item.path, into, options.signal)
              copied.push({ path: inUpper(into), childrenOnly: true })
            } catch (err) {
              options.signal?.throwIfAborted()
              throw new CopySourceError(`ADD ${basename(item.path)}: cannot extract the archive: ${(err as Error).message}`, step.source)
            }
            continue
          }
          const target = destIsDir && !item.isDir ? [...dest.comps, item.name] : dest.comps
          const at = await placeInUpper(upper, below, item.isDir ? target : target.slice(0, -1), item.isDir ? undefined : target[target.length - 1])
          if (item.kind === 'host') await cp(item.path, at, { recursive: true, verbatimSymlinks: true, force: true, preserveTimestamps: true, filter: contextFilter })
          else if (item.kind === 'inline') await writeFile(at, item.content, { mode: 0o644, flag: 'wx' })
          else await copyFromTree(item.tree, item.comps, item.entry, at)
          if (step.chmod !== undefined) await chmodTree(at, parseInt(step.chmod, 8))
          // A directory's contents go into the destination: that directory is the copy's own only when the step makes it.
          copied.push({ path: inUpper(at), childrenOnly: item.isDir && dest.entry !== undefined })
        }
        await commitLayer(st, step, key, upper, undefined, owner === undefined ? undefined : { trees: copied, owner })
      } finally {
        await removeTree(dir)
      }
    }

    /** The layer dirs of a `COPY --from` stage or image, and the key that stands for their content. */
    const copyFromRoot = async (step: CopyStep): Promise<{ layers: string[], key: string, what: string }> => {
      if (step.from.kind === 'image') {
        const image = await resolveBase(resolverFor(options), step.from.ref, platform, step.source)
        return { layers: [await unpackedBase(store, image, dirs.rootfs, options.signal)], key: image.manifestDigest ?? 'scratch', what: `image ${step.from.ref}` }
      }
      if (step.from.kind !== 'stage') throw new CopySourceError('COPY --from names neither a stage nor an image', step.source)
      const from = states.get(step.from.stage)
      if (from === undefined) throw new CopySourceError(`COPY --from names stage ${step.from.stage}, which has not been built`, step.source)
      return { layers: await lowersOf(from), key: from.key, what: `stage ${step.from.stage}` }
    }

    interface CopyInputs { items: CopyItem[], digests: string[] }
    const copyInputs = async (st: StageState, step: CopyStep, contextDir: string): Promise<CopyInputs> => {
      const items: CopyItem[] = []
      const digests: string[] = []
      for (const src of step.sources) {
        if (src.kind === 'inline') { items.push({ kind: 'inline', name: src.name, content: src.content, isDir: false }); continue }
        if (step.from.kind === 'context') {
          for (const p of await expandSource(contextDir, src.path, step.source, options.contextIgnore)) {
            const isDir = (await lstat(p)).isDirectory()
            items.push({ kind: 'host', path: p, name: basename(p), isDir })
            digests.push(`${src.path}=${await treeDigest(p, contextDir, options.contextIgnore)}`)
          }
        } else {
          const from = await copyFromRoot(step)
          const tree = new LayerTree(from.layers)
          // Docker follows a symlink source, the last component included, inside the stage's root.
          const found = await resolveInRoot(tree, posix.resolve('/', src.path), {
            makeError: reason => new CopySourceError(`COPY source ${src.path} in ${from.what}: ${reason}`, step.source)
          })
          if (found.entry === undefined) throw new CopySourceError(`COPY source ${src.path} not found in ${from.what}`, step.source)
          items.push({ kind: 'layers', tree, comps: found.comps, entry: found.entry, name: posix.basename(posix.resolve('/', src.path)), isDir: found.entry.st.isDirectory() })
          digests.push(`${src.path}@${from.key}`)
        }
      }
      void st
      return { items, digests }
    }

    try {
      for (const stage of plan.stages) {
        if (stage.base.kind === 'stage') await settled()
        const base = await baseOf(stage, platform, states, options)
        const st: StageState = {
          stage, base,
          key: stepKey(base.key, `FROM ${formatPlatform(platform)}`, [plan.frontend]),
          config: structuredClone(base.resolved.config?.config ?? {}),
          diffIds: [...(base.resolved.config?.rootfs.diff_ids ?? [])],
          layers: (base.resolved.manifest?.layers ?? []).map(l => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
          history: [...(base.resolved.config?.history ?? [])],
          uppers: [...base.uppers]
        }
        for (const step of stage.steps) {
          n++
          options.signal?.throwIfAborted()
          const t0 = performance.now()
          emit({ type: 'step', index: n, total, stage: stage.index, text: textOf(step), source: step.source })
          let cached = false
          if (step.op === 'run' || step.op === 'copy' || step.op === 'file') {
            if (await scanning()) await ensureRoot(st)
            const inputs = step.op === 'copy' ? await copyInputs(st, step, options.contextDir) : undefined
            // Decided from the inputs, which a cached step has too: the annotation is the same cold or cached.
            if (step.op === 'copy' && step.add && step.chown === undefined) flatten(await archiveFlattens(step, inputs?.items ?? []))
            const extra = step.op === 'run' ? [JSON.stringify(envMap(st.config.Env)), st.config.WorkingDir ?? '', networkFor(step) ? 'net' : 'nonet', JSON.stringify(step.env)]
              : step.op === 'copy' ? [st.config.WorkingDir ?? '', ...(inputs?.digests ?? [])]
                : [step.content]
            const key = stepKey(st.key, step.canonical, extra)
            st.key = key
            cached = await tryCache(st, step, key)
            if (!cached) {
              misses++
              if (step.op === 'run') await runStep(st, step, key)
              else if (step.op === 'copy') await copyStep(st, step, key, inputs as CopyInputs)
              else await fileStep(st, step, key)
            }
          } else {
            st.key = stepKey(st.key, step.canonical)
            applyConfigStep(st.config, step)
            st.history.push({ created, created_by: textOf(step), comment: 'kiln', empty_layer: true })
          }
          const durationMs = performance.now() - t0
          steps.push({ index: n, stage: stage.index, canonical: step.canonical, op: step.op, cached, durationMs })
          emit({ type: 'step-done', index: n, cached, durationMs })
        }
        states.set(stage.index, st)
      }

      await settled()
      const hits = steps.filter(s => s.cached).length
      if (misses === 0 && hits > 0) for (const s of steps) s.cached = true

      const target = states.get(plan.target)
      if (target === undefined) throw new BaseImageError(`target stage ${plan.target} was not built`)
      if (plan.frontend === 'apptainer') apptainerEntrypoint(target)
      const config = {
        created,
        architecture: platform.architecture,
        os: platform.os,
        ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
        config: target.config,
        rootfs: { type: 'layers' as const, diff_ids: target.diffIds },
        history: target.history
      }
      const configBytes = encodeJson(config)
      const configInfo = await store.ingest(configBytes)
      const manifest = {
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: OCI_CONFIG, digest: configInfo.digest, size: configInfo.size },
        layers: target.layers,
        ...(flattened !== undefined ? { annotations: { [PERMISSIONS_ANNOTATION]: 'flattened' } } : {})
      }
      const manifestBytes = encodeJson(manifest)
      const info = await store.ingest(manifestBytes)
      const descriptor = { mediaType: OCI_MANIFEST, digest: info.digest, size: info.size }
      return {
        descriptor, digest: info.digest, config: config as ImageConfig, steps,
        size: target.layers.reduce((s, l) => s + l.size, configInfo.size + info.size),
        durationMs: performance.now() - started,
        ...(driverUsed !== undefined ? { sandboxDriver: driverUsed } : {})
      }
    } finally {
      await Promise.allSettled(pending)
      for (const r of roots) await removeTree(r)
      emit({ type: 'done' })
    }

    async function fileStep (st: StageState, step: Extract<Step, { op: 'file' }>, key: Digest): Promise<void> {
      const { dir, upper } = await newUpper()
      try {
        const below = new LayerTree(await lowersOf(st))
        const parent = await resolveInRoot(below, posix.dirname(posix.resolve('/', step.path)), {
          makeError: reason => new CopySourceError(`cannot write ${step.path}: ${reason}`, step.source)
        })
        const at = await placeInUpper(upper, below, parent.comps, posix.basename(step.path))
        await writeFile(at, step.content, { mode: step.mode, flag: 'wx' })
        await chmod(at, step.mode)
        await commitLayer(st, step, key, upper, undefined)
      } finally {
        await removeTree(dir)
      }
    }
  }

  const baseOf = async (stage: Stage, platform: Platform, states: Map<number, StageState>, options: BuildOptions): Promise<StageBase> => {
    if (stage.base.kind === 'scratch') return { resolved: {}, bottom: {}, key: 'scratch', uppers: [] }
    if (stage.base.kind === 'stage') {
      const from = states.get(stage.base.stage)
      if (from === undefined) throw new BaseImageError(`stage ${stage.base.stage} has not been built`, stage.source)
      const resolved: ResolvedBase = { ...from.base.resolved }
      const cfg = from.base.resolved.config
      const merged = { ...(cfg ?? { architecture: platform.architecture, os: platform.os, rootfs: { type: 'layers' as const, diff_ids: [] } }), config: structuredClone(from.config), rootfs: { type: 'layers' as const, diff_ids: [...from.diffIds] }, history: [...from.history] }
      const manifest = { schemaVersion: 2, config: from.base.resolved.manifest?.config ?? { mediaType: OCI_CONFIG, digest: from.diffIds[0] ?? ('sha256:' + '0'.repeat(64)) as Digest, size: 0 }, layers: [...from.layers] }
      return {
        resolved: { ...resolved, config: merged as ImageConfig, manifest: manifest as ResolvedBase['manifest'] },
        bottom: from.base.bottom,
        key: from.key,
        uppers: [...from.uppers],
        ...(from.root !== undefined ? { root: from.root, rootLayers: from.layers.length } : {})
      }
    }
    const resolved = await resolveBase(resolverFor(options), stage.base.ref, platform, stage.source)
    return { resolved, bottom: resolved, key: resolved.manifestDigest ?? 'scratch', uppers: [] }
  }

  const resolverFor = (options: BuildOptions): BaseResolverInit => ({
    store, refs,
    ...(options.pull !== undefined ? { pull: options.pull } : {}),
    ...(options.signal !== undefined ? { signal: options.signal } : {})
  })

  return { build }
}

type CopyItem =
  | { kind: 'host', path: string, name: string, isDir: boolean }
  | { kind: 'inline', name: string, content: string, isDir: false }
  | { kind: 'layers', tree: LayerTree, comps: string[], entry: TreeEntry, name: string, isDir: boolean }

/** Why an ADD without --chown loses owners: it extracts an archive, whose entries' owners are not kept. */
async function archiveFlattens (step: CopyStep, items: readonly CopyItem[]): Promise<string | undefined> {
  for (const item of items) {
    if (item.kind === 'host' && !item.isDir && await isTarArchive(item.path)) return `${step.source.file}:${step.source.line}: ADD ${item.name} extracts an archive and keeps no owners of its entries (they are 0:0); --chown sets one`
  }
  return undefined
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

/** Copies an entry of a stage (and, for a directory, the merged tree below it) to a host path made by placeInUpper. */
async function copyFromTree (tree: LayerTree, comps: string[], entry: TreeEntry, dest: string): Promise<void> {
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
    const e = await tree.entry(child)
    if (e !== undefined) await copyFromTree(tree, child, e, join(dest, name))
  }
}

/** A copy of a tree with modes, times, links and hardlinks kept (reflinked where the filesystem can). */
async function copyTree (from: string, to: string): Promise<void> {
  let err = ''
  const r = await runProcess({ file: requireTool('cp'), args: ['-a', '--reflink=auto', '--', from, to], env: { PATH: '/usr/bin:/bin' }, onOutput: (_s, c) => { err += Buffer.from(c).toString() } })
  if (r.exitCode !== 0) throw new Error(`cannot copy ${from} to ${to}: ${err.trim()}`)
}

async function chmodTree (path: string, mode: number): Promise<void> {
  const st = await lstat(path)
  if (st.isSymbolicLink()) return
  await chmod(path, mode)
  if (st.isDirectory()) for (const name of await readdir(path)) await chmodTree(join(path, name), mode)
}

function binfmtFor (arch: string): boolean {
  const names: Record<string, string[]> = { arm64: ['qemu-aarch64'], amd64: ['qemu-x86_64'], arm: ['qemu-arm'], ppc64le: ['qemu-ppc64le'], riscv64: ['qemu-riscv64'], s390x: ['qemu-s390x'], '386': ['qemu-i386'] }
  return (names[arch] ?? []).some(n => existsSync(join('/proc/sys/fs/binfmt_misc', n)))
}

function applyConfigStep (config: Config, step: Step): void {
  switch (step.op) {
    case 'env': for (const { key, value } of step.vars) setEnv(config, key, value); break
    case 'workdir': config.WorkingDir = posix.resolve(config.WorkingDir ?? '/', step.path); break
    case 'user': config.User = step.user; break
    case 'label': config.Labels = { ...(config.Labels ?? {}), ...Object.fromEntries(step.labels.map(l => [l.key, l.value])) }; break
    case 'entrypoint': config.Entrypoint = step.argv; config.Cmd = null; break
    case 'cmd': config.Cmd = step.argv; break
    case 'expose': config.ExposedPorts = { ...(config.ExposedPorts ?? {}), ...Object.fromEntries(step.ports.map(p => [p.includes('/') ? p : `${p}/tcp`, {}])) }; break
    case 'volume': config.Volumes = { ...(config.Volumes ?? {}), ...Object.fromEntries(step.paths.map(p => [p, {}])) }; break
    case 'stopsignal': config.StopSignal = step.signal; break
    case 'healthcheck': (config as Record<string, unknown>).Healthcheck = { Test: step.test }; break
    case 'arg': case 'shell': break
    default: break
  }
}

/** Apptainer images run their runscript after sourcing /.singularity.d/env/*.sh, as `apptainer run` does. */
function apptainerEntrypoint (st: StageState): void {
  if (st.config.Entrypoint != null && st.config.Entrypoint.length > 0) return
  st.config.Entrypoint = ['/bin/sh', '-c', 'for f in /.singularity.d/env/*.sh; do [ -r "$f" ] && . "$f"; done; if [ -x /.singularity.d/runscript ]; then exec /.singularity.d/runscript "$@"; fi; exec "$@"', 'runscript']
  st.config.Cmd = st.config.Cmd ?? []
}

