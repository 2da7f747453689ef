/**
 * A step as a person reads it, for image history (`created_by`) and the
 * live `[3/7] ...` lines: the instruction after substitution, in the form
 * `docker history` shows for BuildKit images (`RUN /bin/sh -c echo hi`,
 * `COPY payload/ /data/payload/`, `CMD ["cat" "/x"]`). Derived from the plan
 * IR only, so it is the same on every node (it is part of the image config,
 * hence of the digest). The step cache keys on `canonical`, not on this.
 */
import { TEST_SCRIPT } from '../recipe/index.ts'
import type { CopySourceRef, CopyStep, RunStep, Step } from '../recipe/ir.ts'

/** Apptainer metadata files, by the section that wrote them. */
const APPTAINER_FILES: Record<string, string> = {
  '/.singularity.d/env/90-environment.sh': '%environment',
  '/.singularity.d/runscript': '%runscript',
  '/.singularity.d/startscript': '%startscript',
  [TEST_SCRIPT]: '%test',
  '/.singularity.d/runscript.help': '%help',
  '/.singularity.d/labels.json': '%labels'
}

/** JSON array the way docker history prints exec forms: `["a" "b"]`. */
function execForm (argv: readonly string[]): string {
  return `[${argv.map(a => JSON.stringify(a)).join(' ')}]`
}

function runText (step: RunStep): string {
  if (step.check === true) return `%test: running ${TEST_SCRIPT}`
  const flags = step.network === undefined ? '' : `--network=${step.network} `
  const c = step.command
  const body = c.form === 'exec' ? execForm(c.argv) : c.form === 'shell' ? [...step.shell, c.script].join(' ') : `<<EOF\n${c.content}EOF`
  return `RUN ${flags}${body}`
}

/** Names of stages by index (`FROM ... AS name`), for `COPY --from=name`. */
export type StageNames = (index: number) => string | undefined

function gitText (s: Extract<CopySourceRef, { kind: 'git' }>): string {
  const fragment = (s.ref ?? '') + (s.subdir === undefined ? '' : `:${s.subdir}`)
  return fragment === '' ? s.remote : `${s.remote}#${fragment}`
}

function copyText (step: CopyStep, names: StageNames): string {
  const flags: string[] = []
  if (step.from.kind === 'stage') flags.push(`--from=${names(step.from.stage) ?? step.from.stage}`)
  if (step.from.kind === 'image') flags.push(`--from=${step.from.ref}`)
  if (step.chown !== undefined) flags.push(`--chown=${step.chown}`)
  if (step.chmod !== undefined) flags.push(`--chmod=${step.chmod}`)
  if (step.link) flags.push('--link')
  if (step.parents === true) flags.push('--parents')
  for (const p of step.exclude ?? []) flags.push(`--exclude=${p}`)
  const checksum = step.sources.find(s => s.kind === 'url' && s.checksum !== undefined)
  if (checksum?.kind === 'url' && checksum.checksum !== undefined) flags.push(`--checksum=${checksum.checksum}`)
  if (step.sources.some(s => s.kind === 'git' && s.keepGitDir)) flags.push('--keep-git-dir')
  const sources = step.sources.map(s => s.kind === 'path' ? s.path : s.kind === 'url' ? s.url : s.kind === 'git' ? gitText(s) : `<<${s.name}`)
  return [step.add ? 'ADD' : 'COPY', ...flags, ...sources, step.dest].join(' ')
}

export function instructionText (step: Step, names: StageNames = () => undefined): string {
  switch (step.op) {
    case 'run': return runText(step)
    case 'copy': return copyText(step, names)
    case 'env': return `ENV ${step.vars.map(v => `${v.key}=${v.value}`).join(' ')}`
    case 'arg': return `ARG ${step.name}${step.value === undefined ? '' : `=${step.value}`}`
    case 'workdir': return `WORKDIR ${step.path}`
    case 'user': return `USER ${step.user}`
    case 'label': return `LABEL ${step.labels.map(l => `${l.key}=${JSON.stringify(l.value)}`).join(' ')}`
    case 'entrypoint': return `ENTRYPOINT ${step.form === 'exec' ? execForm(step.argv) : step.argv.join(' ')}`
    case 'cmd': return `CMD ${step.form === 'exec' ? execForm(step.argv) : step.argv.join(' ')}`
    case 'expose': return `EXPOSE ${step.ports.join(' ')}`
    case 'volume': return `VOLUME ${execForm(step.paths)}`
    case 'stopsignal': return `STOPSIGNAL ${step.signal}`
    case 'shell': return `SHELL ${execForm(step.argv)}`
    case 'healthcheck': return `HEALTHCHECK ${step.test[0] === 'NONE' ? 'NONE' : `CMD ${step.test[0] === 'CMD' ? execForm(step.test.slice(1)) : step.test.slice(1).join(' ')}`}`
    case 'onbuild': return `ONBUILD ${step.trigger}`
    case 'file': return `${APPTAINER_FILES[step.path] ?? 'FILE'} ${step.path}`
  }
}

/** The first line of a step's text, shortened for a progress line. */
export function instructionSummary (text: string, max = 120): string {
  const first = text.split('\n', 1)[0] ?? ''
  const more = first.length < text.length
  if (first.length > max) return `${first.slice(0, max - 3)}...`
  return more ? `${first} ...` : first
}
