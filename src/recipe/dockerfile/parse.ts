import { DEFAULT_PLATFORM, MAX_RECIPE_LENGTH } from '../constants.ts'
import { EmptyRecipeError, MissingBaseError, RecipeTooLargeError, UnknownInstructionError, UnknownStageError } from '../errors.ts'
import type { BuildPlan, Stage, Step } from '../ir.ts'
import type { ParseOptions } from '../options.ts'
import { automaticPlatformArgs } from '../platform.ts'
import { pruneStages } from '../prune.ts'
import { didYouMean } from '../suggest.ts'
import { handleArg } from './arg.ts'
import { handleCmd, handleEntrypoint, handleHealthcheck, handleShell } from './commands.ts'
import { handleEnv, handleExpose, handleLabel, handleMaintainer, handleStopSignal, handleUser, handleVolume, handleWorkdir } from './config.ts'
import { globalEnv, Instruction } from './context.ts'
import type { ParseContext, StageState } from './context.ts'
import { handleCopy } from './copy.ts'
import { parseDirectives } from './directives.ts'
import { findStage, handleFrom } from './from.ts'
import { splitInstructions } from './lines.ts'
import { handleOnBuild, parseTriggers } from './onbuild.ts'
import type { TriggerOptions } from './onbuild.ts'
import { handleRun } from './run.ts'

type Handler = (ins: Instruction) => void

const HANDLERS: Readonly<Record<string, Handler>> = {
  ADD: handleCopy,
  ARG: handleArg,
  CMD: handleCmd,
  COPY: handleCopy,
  ENTRYPOINT: handleEntrypoint,
  ENV: handleEnv,
  EXPOSE: handleExpose,
  FROM: handleFrom,
  HEALTHCHECK: handleHealthcheck,
  LABEL: handleLabel,
  MAINTAINER: handleMaintainer,
  ONBUILD: handleOnBuild,
  RUN: handleRun,
  SHELL: handleShell,
  STOPSIGNAL: handleStopSignal,
  USER: handleUser,
  VOLUME: handleVolume,
  WORKDIR: handleWorkdir
}

const KEYWORDS = Object.keys(HANDLERS)

function handle (ins: Instruction): void {
  const handler = HANDLERS[ins.keyword]
  if (handler === undefined) {
    throw new UnknownInstructionError(ins.loc, `unknown instruction: ${ins.raw.keyword}`, didYouMean(ins.raw.keyword, KEYWORDS))
  }
  if (ins.ctx.current === undefined && ins.keyword !== 'ARG' && ins.keyword !== 'FROM') {
    throw new MissingBaseError(ins.loc, `${ins.keyword} before the first FROM`, 'only ARG may come before FROM')
  }
  handler(ins)
}

function toStage (state: StageState): Stage {
  return {
    ...(state.name === undefined ? {} : { name: state.name }),
    index: state.index,
    base: state.base,
    ...(state.platform === undefined ? {} : { platform: state.platform }),
    steps: state.steps,
    source: state.source
  }
}

function selectTarget (ctx: ParseContext, target: string | undefined): StageState {
  const last = ctx.stages.at(-1)
  if (last === undefined) throw new Error('no stages')
  if (target === undefined) return last
  const stage = findStage(ctx.stages, target)
  if (stage === undefined) {
    const names = ctx.stages.flatMap(s => (s.name === undefined ? [] : [s.name]))
    throw new UnknownStageError({ file: ctx.file, line: 1 }, `target stage '${target}' could not be found`,
      names.length > 0 ? `stages: ${names.join(', ')}` : 'the recipe has no named stages')
  }
  return stage
}

/** Parses a Dockerfile into a build plan. Pure: no I/O. */
export function parseDockerfile (text: string, options: ParseOptions = {}): BuildPlan {
  const file = options.filename ?? 'Dockerfile'
  if (text.length > MAX_RECIPE_LENGTH) throw new RecipeTooLargeError({ file, line: 1 }, `recipe is larger than ${MAX_RECIPE_LENGTH} characters`)
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/)
  const directives = parseDirectives(lines, file)
  const raws = splitInstructions(lines, directives, file)
  if (raws.length === 0) throw new EmptyRecipeError({ file, line: 1 }, 'the Dockerfile holds no instructions', 'start it with FROM <image>')
  const platform = options.platform ?? DEFAULT_PLATFORM
  const ctx: ParseContext = {
    file,
    escape: directives.escape,
    options,
    buildArgs: new Map(Object.entries(options.buildArgs ?? {})),
    automaticArgs: automaticPlatformArgs(platform, options.buildPlatform ?? platform),
    globalArgs: new Map(),
    stages: []
  }
  for (const raw of raws) handle(new Instruction(raw, ctx))
  if (ctx.stages.length === 0) {
    throw new MissingBaseError({ file, line: raws.at(-1)?.line ?? 1 }, 'the Dockerfile has no FROM instruction', 'add FROM <image> (or FROM scratch)')
  }
  const target = selectTarget(ctx, options.target)
  const args: Record<string, string> = {}
  for (const [name, value] of globalEnv(ctx)) {
    if (ctx.globalArgs.has(name)) args[name] = value
  }
  return {
    version: 1,
    frontend: 'dockerfile',
    stages: pruneStages(ctx.stages.map(toStage), target.index),
    target: target.index,
    args
  }
}

/** The steps of a base image's ONBUILD triggers (./onbuild.ts), read by this front end. */
export function parseOnBuildTriggers (triggers: readonly string[], options: TriggerOptions): Step[] {
  return parseTriggers(triggers, options, parseDockerfile)
}
