/**
 * The builder: executes a BuildPlan, independent stages side by side
 * (./stage-schedule.ts), each stage step by step. Each filesystem step
 * (RUN, COPY/ADD, Apptainer files) produces one layer; every other step
 * edits the image config (./config-steps.ts).
 *
 * This file is the order of things: for each step it makes the step key,
 * asks the step cache (src/cache, then a remote cache), and on a miss has
 * the step executor (./executor) run it on the stage, whose filesystem the
 * snapshotter (./snapshotter: overlay or scan) keeps; the layers go to the
 * store through ./layers.ts. At the end it writes the image config and
 * manifest.
 */
import { mkdir } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import type { Digest } from '../content/index.ts'
import { createStepCache, createUrlCache, stepKey } from '../cache/index.ts'
import type { CachedLayer } from '../cache/index.ts'
import { encodeJson, formatPlatform, hostPlatform, parsePlatform, OCI_CONFIG, OCI_MANIFEST } from '../oci/index.ts'
import type { ImageConfig, Platform } from '../oci/index.ts'
import type { BuildPlan, RunStep, Stage, Step } from '../recipe/ir.ts'
import { SOURCE_ENVIRONMENT } from '../recipe/index.ts'
import { resolveBase } from './base.ts'
import type { BaseResolverInit, ResolvedBase } from './base.ts'
import { applyConfigStep, apptainerEntrypoint, envMap } from './config-steps.ts'
import { CACHE_MOUNTS_DIR, DEFAULT_SOURCE_DATE_EPOCH } from './constants.ts'
import { debootstrapBase } from './debootstrap.ts'
import { BaseImageError } from './errors.ts'
import { createStepExecutor } from './executor/index.ts'
import { mountKeyInputs } from './executor/mounts.ts'
import { PERMISSIONS_ANNOTATION } from './ownership.ts'
import type { CopyInputs } from './executor/index.ts'
import { instructionText } from './instruction-text.ts'
import { createLayerRecorder } from './layers.ts'
import { takeTriggers } from './onbuild.ts'
import { createSandbox } from './sandbox/index.ts'
import type { Sandbox } from './sandbox/index.ts'
import { createSnapshotter } from './snapshotter/index.ts'
import { runStages } from './stage-schedule.ts'
import type { Snapshotter } from './snapshotter/index.ts'
import type { BuildScope, StageBase, StageState } from './stage.ts'
import type { BuildEvent, BuildOptions, BuildResult, Builder, BuilderInit, StepReport } from './types.ts'

export function createBuilder (init: BuilderInit): Builder {
  const { store, refs, workDir } = init
  const cache = createStepCache(init.db)
  const urlCache = createUrlCache(init.db)
  const dirs = { rootfs: join(workDir, 'rootfs'), snapshots: join(workDir, 'snapshots'), tmp: join(workDir, 'tmp'), cacheMounts: join(workDir, CACHE_MOUNTS_DIR) }
  let sandboxPromise: Promise<Sandbox> | undefined
  const sandbox = async (): Promise<Sandbox> => {
    sandboxPromise ??= init.sandbox !== undefined
      ? Promise.resolve(init.sandbox)
      : createSandbox({ ...(init.sandboxDriver !== undefined ? { driver: init.sandboxDriver } : {}), ...(init.probeCacheDir !== undefined ? { probeCacheDir: init.probeCacheDir } : {}) })
    return await sandboxPromise
  }

  const build = async (plan: BuildPlan, given: BuildOptions): Promise<BuildResult> => {
    const started = performance.now()
    // The build's own signal: the caller's, and aborted too when a stage fails while others run (./stage-schedule.ts).
    const stop = new AbortController()
    const outer = given.signal
    const onOuter = (): void => { stop.abort(outer?.reason) }
    if (outer?.aborted === true) onOuter()
    else outer?.addEventListener('abort', onOuter, { once: true })
    const options: BuildOptions = { ...given, signal: stop.signal }
    const platform: Platform = options.platform === undefined ? hostPlatform() : parsePlatform(options.platform)
    const epoch = options.sourceDateEpoch ?? DEFAULT_SOURCE_DATE_EPOCH
    const stageNames = (index: number): string | undefined => plan.stages.find(s => s.index === index)?.name
    const runSteps = plan.stages.flatMap(s => s.steps.filter((x): x is RunStep => x.op === 'run'))
    const networked = options.network === 'default'
    const scope: BuildScope = {
      store, urlCache, options, platform, epoch,
      created: new Date(epoch * 1000).toISOString().replace('.000Z', 'Z'),
      dirs,
      states: new Map<number, StageState>(),
      resolver: resolverFor(options),
      emit: (e: BuildEvent): void => { options.onEvent?.(e) },
      textOf: (step: Step): string => instructionText(step, stageNames),
      networkFor: (step: RunStep): boolean => networked && step.network !== 'none'
    }
    const { states, emit, created } = scope
    for (const d of Object.values(dirs)) await mkdir(d, { recursive: true, mode: 0o700 })
    const layers = createLayerRecorder(scope, cache)
    const executor = createStepExecutor(scope, sandbox)
    /** Chosen once, at the first filesystem step, by the driver that would run RUN steps (see ./snapshotter/types.ts). */
    let snapshotter: Snapshotter | undefined
    let choosing: Promise<Snapshotter> | undefined
    const snapshotterFor = async (): Promise<Snapshotter> => {
      choosing ??= (async () => {
        // A probe failure surfaces when a RUN has to run; until then the overlay snapshotter (no sandbox needed) serves.
        const scan = runSteps.length > 0 && await sandbox().then(s => !s.features.overlay, () => false)
        snapshotter = createSnapshotter(scan ? 'scan' : 'overlay', scope, layers)
        return snapshotter
      })()
      return await choosing
    }
    const steps: StepReport[] = []
    let total = plan.stages.reduce((n, s) => n + s.steps.length, 0)
    let n = 0
    /** Filesystem steps that missed the cache: config steps count as cached only when none did. */
    let misses = 0
    /** Report indexes of checks, which run on every build and are never reported cached. */
    const checks = new Set<number>()
    /** Why the image's owners are not what the recipe made (the first step that loses them), told once. */
    let flattened: string | undefined
    const flatten = (why: string | undefined): void => {
      if (why === undefined || flattened !== undefined) return
      flattened = why
      emit({ type: 'warning', message: `file ownership is not kept: ${why}; the image is annotated ${PERMISSIONS_ANNOTATION}=flattened (docs/building.md, "Ownership")` })
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

    /** A cache hit counts while its blob exists and the snapshotter can stack it (overlay: its snapshot dir is there). */
    const tryCache = async (snap: Snapshotter, st: StageState, step: Step, key: Digest): Promise<boolean> => {
      if (options.noCache === true) return false
      let hit = cache.get(key)
      if (hit === undefined || !await store.has(hit.descriptor.digest)) {
        hit = await askRemote(st, key)
        if (hit === undefined) return false
      }
      if (!await snap.applyCached(st, key, hit)) return false
      layers.push(st, step, hit)
      return true
    }

    /** One stage, start to end; its steps are numbered as they start (stages may run at once). */
    const buildStage = async (stage: Stage, signal: AbortSignal): Promise<void> => {
      if (stage.base.kind === 'stage') await layers.settled()
      const base = await baseOf(stage, platform, states, options)
      const st: StageState = {
        stage, base,
        key: stepKey(base.key, `FROM ${formatPlatform(platform)}`, [plan.frontend, ...(options.layerCompression === 'zstd' ? ['layers=zstd'] : [])]),
        config: structuredClone(base.resolved.config?.config ?? {}),
        diffIds: [...(base.resolved.config?.rootfs.diff_ids ?? [])],
        layers: (base.resolved.manifest?.layers ?? []).map(l => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
        history: [...(base.resolved.config?.history ?? [])],
        uppers: [...base.uppers]
      }
      const triggers = takeTriggers(st, plan, platform)
      total += triggers.length
      for (const step of [...triggers, ...stage.steps]) {
        const index = ++n
        signal.throwIfAborted()
        const t0 = performance.now()
        st.step = index
        emit({ type: 'step', index, total, stage: stage.index, text: scope.textOf(step), source: step.source })
        let cached = false
        if (step.op === 'run' && step.check === true) {
          // Not keyed, not cached: a check runs on every build, as Apptainer runs %test.
          const snap = await snapshotterFor()
          await snap.prepare(st)
          await executor.check(snap, st, step, plan.stages.at(-1) === stage)
          checks.add(index)
        } else if (step.op === 'run' || step.op === 'copy' || step.op === 'file') {
          const snap = await snapshotterFor()
          await snap.prepare(st)
          const inputs: CopyInputs | undefined = step.op === 'copy' ? await executor.copyInputs(step) : undefined
          // Owners set in a RUN are kept or not by the node and stage (not the cache): decided first, and part of the key.
          const ownersLost = step.op === 'run' ? await executor.ownersRefusal(snap, st) : undefined
          if (step.op === 'run' && ownersLost !== undefined) flatten(`${step.source.file}:${step.source.line}: RUN: owners set inside it (chown, useradd -m, dpkg) are not recorded: ${ownersLost}; its files are 0:0 in its layer`)
          const extra = step.op === 'run' ? [JSON.stringify(envMap(st.config.Env)), st.config.WorkingDir ?? '', scope.networkFor(step) ? 'net' : 'nonet', JSON.stringify(step.env), ...await mountKeyInputs(scope, step), ownersLost === undefined ? 'owners' : 'flattened', ...(st.config.User !== undefined && st.config.User !== '' ? [`user:${st.config.User}`] : [])]
            : step.op === 'copy' ? [st.config.WorkingDir ?? '', ...(inputs?.digests ?? []), 'owners-kept']
              : [step.content]
          const key = stepKey(st.key, step.canonical, extra)
          st.key = key
          cached = await tryCache(snap, st, step, key)
          if (!cached) {
            misses++
            await executor.execute(snap, st, step, key, inputs, step.op === 'run' && ownersLost === undefined)
          }
        } else {
          st.key = stepKey(st.key, step.canonical)
          applyConfigStep(st.config, step)
          st.history.push({ created, created_by: scope.textOf(step), comment: 'kiln', empty_layer: true })
        }
        const durationMs = performance.now() - t0
        steps.push({ index, stage: stage.index, canonical: step.canonical, op: step.op, cached, durationMs })
        emit({ type: 'step-done', index, cached, durationMs })
      }
      states.set(stage.index, st)
    }

    try {
      await runStages(plan.stages, options.parallelStages ?? availableParallelism(), buildStage, stop)
      await layers.settled()
      steps.sort((a, b) => a.index - b.index)
      const hits = steps.filter(s => s.cached).length
      if (misses === 0 && hits > 0) for (const s of steps) s.cached = !checks.has(s.index)

      const target = states.get(plan.target)
      if (target === undefined) throw new BaseImageError(`target stage ${plan.target} was not built`)
      if (plan.frontend === 'apptainer') apptainerEntrypoint(target.config, SOURCE_ENVIRONMENT)
      const config = {
        created,
        architecture: platform.architecture,
        os: platform.os,
        ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
        config: !hasEntries(options.labels) ? target.config : { ...target.config, Labels: { ...(target.config.Labels ?? {}), ...options.labels } },
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
        ...(flattened !== undefined || hasEntries(options.annotations) ? { annotations: { ...options.annotations, ...(flattened !== undefined ? { [PERMISSIONS_ANNOTATION]: 'flattened' } : {}) } } : {})
      }
      const manifestBytes = encodeJson(manifest)
      const info = await store.ingest(manifestBytes)
      const descriptor = { mediaType: OCI_MANIFEST, digest: info.digest, size: info.size }
      const driverUsed = executor.driverUsed()
      return {
        descriptor, digest: info.digest, config: config as ImageConfig, steps,
        size: target.layers.reduce((s, l) => s + l.size, configInfo.size + info.size),
        durationMs: performance.now() - started,
        ...(driverUsed !== undefined ? { sandboxDriver: driverUsed } : {})
      }
    } finally {
      outer?.removeEventListener('abort', onOuter)
      await layers.drain()
      await snapshotter?.close()
      emit({ type: 'done' })
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
    const resolved = stage.base.kind === 'debootstrap'
      ? await debootstrapBase({ ...resolverFor(options), tmpDir: dirs.tmp, sourceDateEpoch: options.sourceDateEpoch ?? DEFAULT_SOURCE_DATE_EPOCH, onOutput: (stream, chunk) => options.onEvent?.({ type: 'output', stream, chunk }) }, stage.base, platform, stage.source)
      : await resolveBase(resolverFor(options), stage.base.ref, platform, stage.source)
    return { resolved, bottom: resolved, key: resolved.manifestDigest ?? 'scratch', uppers: [] }
  }

  const resolverFor = (options: BuildOptions): BaseResolverInit => ({
    store, refs,
    tmpDir: init.workDir,
    ...(init.libraryUrl !== undefined ? { libraryUrl: init.libraryUrl } : {}),
    ...(options.pull !== undefined ? { pull: options.pull } : {}),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
    ...(options.onProgress !== undefined ? { onProgress: options.onProgress } : {})
  })

  const baseEnvs = async (plan: BuildPlan, options: BuildOptions): Promise<Map<number, Record<string, string>>> => {
    const platform: Platform = options.platform === undefined ? hostPlatform() : parsePlatform(options.platform)
    const out = new Map<number, Record<string, string>>()
    for (const [i, stage] of plan.stages.entries()) {
      if (stage.base.kind !== 'image') continue
      const resolved = await resolveBase(resolverFor(options), stage.base.ref, platform, stage.source)
      out.set(i, envMap(resolved.config?.config?.Env))
    }
    return out
  }

  return { build, baseEnvs }
}

function hasEntries (record: Readonly<Record<string, string>> | undefined): boolean {
  return record !== undefined && Object.keys(record).length > 0
}
