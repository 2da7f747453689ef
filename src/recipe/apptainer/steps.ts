import { withCanonical } from '../canonical.ts'
import type { StepBody } from '../canonical.ts'
import { RecipeSyntaxError, UnknownStageError } from '../errors.ts'
import type { CopyFrom, KeyValue, SourceLoc, Step } from '../ir.ts'
import { appFilesSteps, collectApps, installSteps, layoutStep } from './apps.ts'
import { TEST_COMMAND, TEST_SCRIPT } from './in-image.ts'
import type { Section, SectionName } from './sections.ts'

/** Where Apptainer keeps a section's text in the image, and with which mode. */
const METADATA_FILES: Partial<Record<SectionName, { path: string, mode: number, prefix: (shell: string) => string }>> = {
  environment: { path: '/.singularity.d/env/90-environment.sh', mode: 0o755, prefix: () => '#!/bin/sh\n# Custom environment shell code should follow\n\n' },
  runscript: { path: '/.singularity.d/runscript', mode: 0o755, prefix: shell => `#!${shell}\n\n` },
  startscript: { path: '/.singularity.d/startscript', mode: 0o755, prefix: shell => `#!${shell}\n\n` },
  test: { path: TEST_SCRIPT, mode: 0o755, prefix: shell => `#!${shell}\n\n` },
  help: { path: '/.singularity.d/runscript.help', mode: 0o644, prefix: () => '' }
}

const LABELS_FILE = '/.singularity.d/labels.json'
const ENVIRONMENT_FILE = '/.singularity.d/env/91-environment.sh'

/** Shell `%post` runs with: errexit and tracing, as Apptainer does. */
const POST_SHELL = ['/bin/sh', '-e', '-x', '-c']

/** Environment of %post / %setup: the rootfs is the sandbox's `/`. */
const SCRIPT_ENV: Record<string, string> = {
  APPTAINER_ROOTFS: '/',
  SINGULARITY_ROOTFS: '/',
  APPTAINER_ENVIRONMENT: ENVIRONMENT_FILE,
  SINGULARITY_ENVIRONMENT: ENVIRONMENT_FILE
}

export interface StageLookup {
  /** Index of an earlier stage by name, if any. */
  find: (name: string) => number | undefined
  file: string
}

function locOf (section: Section, file: string, line = section.line): SourceLoc {
  return { file, line }
}

/** `-c /bin/bash` on a script section; the interpreter or undefined. */
function interpreterOf (section: Section, file: string): string | undefined {
  if (section.args === '') return undefined
  const m = /^-c\s+(\S+)$/.exec(section.args)
  if (m === null) throw new RecipeSyntaxError(locOf(section, file), `%${section.name}: unexpected arguments '${section.args}'`, `only -c <interpreter> is accepted, e.g. %${section.name} -c /bin/bash`)
  return m[1]
}

function splitFileLine (line: string): string[] {
  return (line.match(/(?:"[^"]*"|'[^']*'|\S)+/g) ?? []).map(w => w.replace(/^(["'])(.*)\1$/, '$2'))
}

function filesSteps (section: Section, lookup: StageLookup): StepBody[] {
  let from: CopyFrom = { kind: 'context' }
  if (section.args !== '') {
    const m = /^from\s+(\S+)$/i.exec(section.args)
    if (m === null) throw new RecipeSyntaxError(locOf(section, lookup.file), `%files: unexpected arguments '${section.args}'`, 'use %files from <stage>')
    const stage = lookup.find(m[1] ?? '')
    if (stage === undefined) throw new UnknownStageError(locOf(section, lookup.file), `%files from ${m[1] ?? ''}: no earlier stage has that name`, 'name stages with a Stage: header')
    from = { kind: 'stage', stage }
  }
  const steps: StepBody[] = []
  for (const [i, line] of section.body.split('\n').entries()) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue
    const loc = locOf(section, lookup.file, section.bodyLine + i)
    const words = splitFileLine(line)
    const [src, dest = src] = words
    if (src === undefined || dest === undefined || words.length > 2) throw new RecipeSyntaxError(loc, `%files: expected 'source [destination]', got '${line.trim()}'`)
    steps.push({
      op: 'copy',
      add: false,
      from,
      sources: [{ kind: 'path', path: src }],
      dest: dest.startsWith('/') ? dest : `/${dest}`,
      link: false,
      semantics: 'cp',
      source: loc
    })
  }
  return steps
}

function labelsSteps (section: Section, file: string): StepBody[] {
  const labels: KeyValue[] = []
  for (const line of section.body.split('\n')) {
    const m = /^\s*(\S+)\s*(.*?)\s*$/.exec(line)
    if (m === null || (m[1] ?? '').startsWith('#')) continue
    labels.push({ key: m[1] ?? '', value: m[2] ?? '' })
  }
  if (labels.length === 0) return []
  const loc = locOf(section, file)
  const json = `${JSON.stringify(Object.fromEntries(labels.map(l => [l.key, l.value])), null, '\t')}\n`
  return [
    { op: 'label', labels, source: loc },
    { op: 'file', path: LABELS_FILE, content: json, mode: 0o644, source: loc }
  ]
}

function scriptStep (section: Section, file: string): StepBody {
  const interpreter = interpreterOf(section, file)
  return {
    op: 'run',
    command: { form: 'shell', script: section.body },
    shell: interpreter === undefined ? POST_SHELL.slice() : [interpreter, '-c'],
    env: { ...SCRIPT_ENV },
    source: locOf(section, file)
  }
}

/** Order in which kiln applies a stage's own sections (apps come first, %test last). */
const ORDER: readonly SectionName[] = ['setup', 'files', 'environment', 'runscript', 'startscript', 'test', 'help', 'post', 'labels']

/** The %test check: `apptainer test` on the stage as built, at its end (see RunStep.check). */
function testCheck (sections: readonly Section[], file: string): StepBody[] {
  const test = sections.filter(s => s.name === 'test' && s.body.trim() !== '').at(-1)
  if (test === undefined) return []
  return [{ op: 'run', command: { form: 'shell', script: TEST_COMMAND }, shell: ['/bin/sh', '-c'], env: {}, check: true, source: locOf(test, file) }]
}

export interface SectionOptions {
  /** Leave %test out (kiln build --notest). */
  skipTest: boolean
}

/**
 * The steps of one stage's sections; %arguments is handled before
 * (templating). As in Apptainer, the SCIF apps are laid out first, each
 * %appinstall runs after %post in %post's shell, and %test runs last.
 * %setup runs inside the sandbox like %post, before %files: it never sees
 * the build host (see docs/recipes.md).
 */
export function sectionSteps (sections: readonly Section[], lookup: StageLookup, options: SectionOptions): Step[] {
  const file = lookup.file
  const apps = collectApps(sections, file)
  const layout = layoutStep(apps, file)
  const bodies: StepBody[] = [...(layout === undefined ? [] : [layout]), ...appFilesSteps(apps, file, splitFileLine)]
  for (const name of ORDER) {
    for (const section of sections.filter(s => s.name === name)) {
      if (name === 'setup' || name === 'post') {
        if (section.body.trim() !== '') bodies.push(scriptStep(section, file))
      } else if (name === 'files') {
        bodies.push(...filesSteps(section, lookup))
      } else if (name === 'labels') {
        bodies.push(...labelsSteps(section, file))
      } else {
        const meta = METADATA_FILES[name]
        if (meta === undefined) continue
        const shell = interpreterOf(section, file) ?? '/bin/sh'
        bodies.push({ op: 'file', path: meta.path, content: meta.prefix(shell) + section.body, mode: meta.mode, source: locOf(section, file) })
      }
    }
    if (name === 'post') {
      const post = sections.find(s => s.name === 'post')
      const interpreter = post === undefined ? undefined : interpreterOf(post, file)
      bodies.push(...installSteps(apps, file, interpreter === undefined ? POST_SHELL : [interpreter, '-c'], SCRIPT_ENV))
    }
  }
  if (!options.skipTest) bodies.push(...testCheck(sections, file))
  return bodies.map(body => withCanonical(body))
}
