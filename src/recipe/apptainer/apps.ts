/**
 * SCIF apps: the `%app*` sections of a definition file, laid out in the
 * image as Apptainer's build lays them out (internal/pkg/build/apps/apps.go),
 * so that `apptainer run --app NAME` finds them in the OCI image.
 *
 * Terms:
 * - app: a name given after an app section (`%apprun NAME`); apps keep the
 *   order in which their first section appears. Sections of the same kind
 *   for the same app are joined, as Apptainer joins them.
 * - app base: `/scif/apps/NAME`, with `bin/` and `lib/`; `%appfiles`
 *   destinations are relative to it and `%appinstall` runs in it.
 * - app meta: `/scif/apps/NAME/scif`: `env/01-base.sh` (the `SCIF_APP*`
 *   variables of the app), `env/90-environment.sh` (`%appenv`),
 *   `labels.json` (`%applabels` plus `SCIF_APP_NAME`), `runscript`
 *   (`%apprun`), `startscript` (`%appstart`), `test` (`%apptest`),
 *   `runscript.help` (`%apphelp`).
 * - app data: `/scif/data/NAME`, with `input/` and `output/`.
 * - `/.singularity.d/env/94-appsbase.sh`: every app's `SCIF_APP*_NAME`
 *   variables, sourced by every action.
 *
 * Steps, per stage: one `layout` RUN that makes the directories and writes
 * the files above (one layer for all apps), the `%appfiles` copies, and,
 * after `%post`, one `install` RUN per app. `%apptest` is written, not run:
 * Apptainer runs only the image's `%test` at build time.
 */
import type { StepBody } from '../canonical.ts'
import { RecipeSyntaxError } from '../errors.ts'
import type { SourceLoc } from '../ir.ts'
import { shellQuote } from './in-image.ts'
import { APP_SECTIONS } from './sections.ts'
import type { AppSectionName, Section } from './sections.ts'

/** App names Apptainer can put in a path and kiln in a shell word unquoted. */
const APP_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/

export interface App {
  name: string
  /** Section bodies by kind, joined when a kind appears twice. */
  bodies: Partial<Record<AppSectionName, string>>
  /** Where each kind of section was first written. */
  lines: Partial<Record<AppSectionName, number>>
  line: number
}

function isAppSection (name: string): name is AppSectionName {
  return (APP_SECTIONS as readonly string[]).includes(name)
}

/** The apps of a stage, in order of first appearance. */
export function collectApps (sections: readonly Section[], file: string): App[] {
  const apps: App[] = []
  for (const section of sections) {
    if (!isAppSection(section.name)) continue
    const name = section.args
    if (!APP_NAME.test(name)) {
      throw new RecipeSyntaxError({ file, line: section.line }, `%${section.name}: expected one app name, got '${name}'`,
        `write %${section.name} NAME, NAME made of letters, digits, '_', '.' and '-'`)
    }
    let app = apps.find(a => a.name === name)
    if (app === undefined) { app = { name, bodies: {}, lines: {}, line: section.line }; apps.push(app) }
    app.bodies[section.name] = (app.bodies[section.name] ?? '') + section.body
    app.lines[section.name] ??= section.line
  }
  return apps
}

const base = (app: App): string => `/scif/apps/${app.name}`
const meta = (app: App): string => `${base(app)}/scif`
const data = (app: App): string => `/scif/data/${app.name}`
/** The app's name in variable names: Apptainer replaces what is not [A-Za-z0-9_]. */
const varName = (app: App): string => app.name.replace(/[^a-zA-Z0-9_]/g, '_')

function baseEnv (app: App): string {
  return `#!/bin/sh

SCIF_APPNAME=${app.name}
SCIF_APPROOT="${base(app)}"
SCIF_APPMETA="${meta(app)}"
SCIF_DATA="/scif/data"
SCIF_APPDATA="${data(app)}"
SCIF_APPINPUT="${data(app)}/input"
SCIF_APPOUTPUT="${data(app)}/output"
export SCIF_APPDATA SCIF_APPNAME SCIF_APPROOT SCIF_APPMETA SCIF_APPINPUT SCIF_APPOUTPUT SCIF_DATA
`
}

/** `labels.json` as Go's json.MarshalIndent writes a map: keys sorted, tab indent. */
function labelsJson (app: App): string {
  const labels = new Map<string, string>([['SCIF_APP_NAME', app.name]])
  for (const raw of (app.bodies.applabels ?? '').split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const space = line.indexOf(' ')
    labels.set(space < 0 ? line : line.slice(0, space), space < 0 ? '' : line.slice(space + 1).trim())
  }
  const sorted = [...labels].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return JSON.stringify(Object.fromEntries(sorted), null, '\t')
}

interface AppFile { path: string, content: string, mode: number }

/** The files of one app's meta dir, only those its sections ask for (01-base.sh and labels.json always). */
function appFiles (app: App): AppFile[] {
  const script = (body: string | undefined, name: string): AppFile[] =>
    body === undefined || body === '' ? [] : [{ path: `${meta(app)}/${name}`, content: `#!/bin/sh\n\n${body}`, mode: 0o755 }]
  const env = app.bodies.appenv ?? ''
  const help = app.bodies.apphelp ?? ''
  return [
    { path: `${meta(app)}/env/01-base.sh`, content: baseEnv(app), mode: 0o755 },
    ...(env === '' ? [] : [{ path: `${meta(app)}/env/90-environment.sh`, content: env, mode: 0o755 }]),
    ...script(app.bodies.apprun, 'runscript'),
    ...script(app.bodies.appstart, 'startscript'),
    ...script(app.bodies.apptest, 'test'),
    ...(help === '' ? [] : [{ path: `${meta(app)}/runscript.help`, content: help, mode: 0o644 }]),
    { path: `${meta(app)}/labels.json`, content: labelsJson(app), mode: 0o644 }
  ]
}

/** `94-appsbase.sh`: the variables naming each app's dirs and the meta files it has. */
function appsBase (apps: readonly App[]): string {
  return apps.map(app => {
    const n = varName(app)
    const has = new Set(appFiles(app).map(f => f.path.slice(meta(app).length + 1)))
    return `## App Global Exports For: ${n}

SCIF_APPDATA_${n}=${data(app)}
SCIF_APPMETA_${n}=${meta(app)}
SCIF_APPROOT_${n}=${base(app)}
SCIF_APPBIN_${n}=${base(app)}/bin
SCIF_APPLIB_${n}=${base(app)}/lib

export SCIF_APPDATA_${n} SCIF_APPMETA_${n} SCIF_APPROOT_${n} SCIF_APPBIN_${n} SCIF_APPLIB_${n}
` +
      (has.has('env/90-environment.sh') ? `export SCIF_APPENV_${n}="${meta(app)}/env/90-environment.sh"\n` : '') +
      (has.has('labels.json') ? `export SCIF_APPLABELS_${n}="${meta(app)}/labels.json"\n` : '') +
      (has.has('runscript') ? `export SCIF_APPRUN_${n}="${meta(app)}/runscript"\n` : '') +
      (has.has('startscript') ? `export SCIF_APPSTART_${n}="${meta(app)}/startscript"\n` : '')
  }).join('')
}

/** The `layout` RUN: directories and meta files of every app, and 94-appsbase.sh. */
export function layoutStep (apps: readonly App[], file: string): StepBody | undefined {
  const first = apps[0]
  if (first === undefined) return undefined
  const dirs = apps.flatMap(app => [`${base(app)}/bin`, `${base(app)}/lib`, `${meta(app)}/env`, `${data(app)}/input`, `${data(app)}/output`])
  const files = [...apps.flatMap(appFiles), { path: '/.singularity.d/env/94-appsbase.sh', content: appsBase(apps), mode: 0o755 }]
  const script = [
    `# SCIF apps: ${apps.map(a => a.name).join(' ')}`,
    `mkdir -p /.singularity.d/env ${dirs.join(' ')}`,
    ...files.map(f => `printf '%s' ${shellQuote(f.content)} > ${f.path} && chmod ${f.mode.toString(8)} ${f.path}`)
  ].join('\n')
  return { op: 'run', command: { form: 'shell', script: `${script}\n` }, shell: ['/bin/sh', '-e', '-c'], env: {}, source: { file, line: first.line } }
}

/** `%appfiles NAME`: `source [destination]` lines, destinations inside the app base (cp rules, as %files). */
export function appFilesSteps (apps: readonly App[], file: string, splitLine: (line: string) => string[]): StepBody[] {
  const steps: StepBody[] = []
  for (const app of apps) {
    const body = app.bodies.appfiles
    const at = app.lines.appfiles
    if (body === undefined || at === undefined) continue
    for (const [i, raw] of body.split('\n').entries()) {
      const line = raw.split('#')[0]?.trim() ?? ''
      if (line === '') continue
      const loc: SourceLoc = { file, line: at + 1 + i }
      const words = splitLine(line)
      const [src, dest = src] = words
      if (src === undefined || dest === undefined || words.length > 2) throw new RecipeSyntaxError(loc, `%appfiles ${app.name}: expected 'source [destination]', got '${line}'`)
      steps.push({
        op: 'copy', add: false, from: { kind: 'context' }, sources: [{ kind: 'path', path: src }],
        dest: `${base(app)}/${dest.replace(/^\/+/, '')}`, link: false, semantics: 'cp', source: loc
      })
    }
  }
  return steps
}

/** One RUN per app with `%appinstall`: in the app base, with the app's 01-base.sh sourced, in %post's shell. */
export function installSteps (apps: readonly App[], file: string, shell: readonly string[], env: Record<string, string>): StepBody[] {
  return apps.flatMap(app => {
    const body = app.bodies.appinstall
    const line = app.lines.appinstall
    if (body === undefined || body.trim() === '' || line === undefined) return []
    const script = `\ncd /\n. ${meta(app)}/env/01-base.sh\n\ncd ${base(app)}\n${body}\ncd /\n`
    return [{ op: 'run' as const, command: { form: 'shell' as const, script }, shell: [...shell], env: { ...env }, source: { file, line } }]
  })
}
