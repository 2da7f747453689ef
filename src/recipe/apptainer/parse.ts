import { MAX_RECIPE_LENGTH, MAX_STAGES } from '../constants.ts'
import { EmptyRecipeError, MissingBaseError, RecipeSyntaxError, RecipeTooLargeError, UnknownStageError, UnsupportedFeatureError } from '../errors.ts'
import type { BuildPlan, SourceLoc, Stage } from '../ir.ts'
import type { ParseOptions } from '../options.ts'
import { pruneStages } from '../prune.ts'
import { baseRefOf } from './base-ref.ts'
import { DEBOOTSTRAP_HEADERS } from './debootstrap.ts'
import { splitDefinition } from './sections.ts'
import type { DefStage, HeaderEntry } from './sections.ts'
import { sectionSteps } from './steps.ts'
import { applyTemplates, parseArguments } from './template.ts'

const HEADER_KEYS = new Set(['bootstrap', 'from', 'stage'])
const STAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/

function headerValue (header: readonly HeaderEntry[], key: string, file: string): HeaderEntry | undefined {
  const entries = header.filter(h => h.key === key)
  const second = entries[1]
  if (second !== undefined) throw new RecipeSyntaxError({ file, line: second.line }, `header ${key} given twice in one stage`)
  return entries[0]
}

function checkHeader (stage: DefStage, file: string, bootstrap: string): void {
  for (const entry of stage.header) {
    if (DEBOOTSTRAP_HEADERS.includes(entry.key) && bootstrap.toLowerCase() === 'debootstrap') continue
    if (!HEADER_KEYS.has(entry.key)) {
      throw new UnsupportedFeatureError({ file, line: entry.line }, `header '${entry.key}' is not supported`,
        'kiln understands Bootstrap, From and Stage (and OSVersion, MirrorURL, Include for Bootstrap: debootstrap); put registries in the From reference')
    }
  }
}

/** Merged %arguments defaults (any stage) overridden by build args. */
function templateValues (stages: readonly DefStage[], buildArgs: Record<string, string>): Map<string, string> {
  const values = new Map<string, string>()
  for (const stage of stages) {
    for (const section of stage.sections) {
      if (section.name === 'arguments') for (const [k, v] of parseArguments(section.body)) values.set(k, v)
    }
  }
  for (const [k, v] of Object.entries(buildArgs)) values.set(k, v)
  return values
}

function toStage (def: DefStage, index: number, built: readonly Stage[], options: ParseOptions, file: string): Stage {
  const loc: SourceLoc = { file, line: def.line }
  const bootstrap = headerValue(def.header, 'bootstrap', file)?.value ?? ''
  // The base first: a refused agent (yum with its MirrorURL...) says what to use instead.
  const base = baseRefOf(bootstrap, key => headerValue(def.header, key, file), loc, options)
  checkHeader(def, file, bootstrap)
  const name = headerValue(def.header, 'stage', file)
  if (name !== undefined && !STAGE_NAME.test(name.value)) throw new RecipeSyntaxError({ file, line: name.line }, `invalid stage name '${name.value}'`)
  if (name !== undefined && built.some(s => s.name === name.value)) throw new RecipeSyntaxError({ file, line: name.line }, `duplicate stage name '${name.value}'`)
  const lookup = { file, find: (n: string) => built.find(s => s.name === n)?.index }
  return {
    ...(name === undefined ? {} : { name: name.value }),
    index,
    base,
    ...(options.platform === undefined ? {} : { platform: options.platform }),
    steps: sectionSteps(def.sections, lookup, { skipTest: options.skipTest === true }),
    source: loc
  }
}

function selectTarget (stages: readonly Stage[], target: string | undefined, file: string): number {
  const last = stages.at(-1)
  if (last === undefined) throw new Error('no stages')
  if (target === undefined) return last.index
  const found = /^\d+$/.test(target) ? stages[Number(target)] : stages.find(s => s.name === target)
  if (found === undefined) {
    const names = stages.flatMap(s => (s.name === undefined ? [] : [s.name]))
    throw new UnknownStageError({ file, line: 1 }, `target stage '${target}' could not be found`, names.length > 0 ? `stages: ${names.join(', ')}` : 'name stages with a Stage: header')
  }
  return found.index
}

/** Parses an Apptainer definition file into a build plan. Pure: no I/O. */
export function parseApptainer (text: string, options: ParseOptions = {}): BuildPlan {
  const file = options.filename ?? 'Singularity.def'
  if (text.length > MAX_RECIPE_LENGTH) throw new RecipeTooLargeError({ file, line: 1 }, `recipe is larger than ${MAX_RECIPE_LENGTH} characters`)
  const rawLines = text.replace(/^\uFEFF/, '').split(/\r?\n/)
  if (rawLines.every(l => l.trim() === '' || l.trimStart().startsWith('#'))) {
    throw new EmptyRecipeError({ file, line: 1 }, 'the definition file is empty', 'start it with Bootstrap: docker and From: <image>')
  }
  const values = templateValues(splitDefinition(rawLines, file), options.buildArgs ?? {})
  const defs = splitDefinition(applyTemplates(rawLines, values, file), file)
  if (defs.length === 0) throw new MissingBaseError({ file, line: 1 }, 'no Bootstrap header', 'start the file with Bootstrap: docker and From: <image>')
  if (defs.length > MAX_STAGES) throw new RecipeTooLargeError({ file, line: 1 }, `more than ${MAX_STAGES} stages`)
  const stages: Stage[] = []
  for (const [index, def] of defs.entries()) stages.push(toStage(def, index, stages, options, file))
  const target = selectTarget(stages, options.target, file)
  return {
    version: 1,
    frontend: 'apptainer',
    stages: pruneStages(stages, target),
    target,
    args: Object.fromEntries(values)
  }
}
