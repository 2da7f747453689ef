import { UnknownStageError, UnsupportedFeatureError } from '../errors.ts'
import type { CopyFrom, CopySourceRef } from '../ir.ts'
import type { Instruction } from './context.ts'
import { findStage } from './from.ts'
import { parseFlags } from './flags.ts'
import type { FlagSpec } from './flags.ts'
import { isHeredocWord } from './heredoc.ts'
import { parseJsonForm } from './json-form.ts'
import { splitRawWords } from './words.ts'

const COPY_FLAGS: FlagSpec = {
  values: ['from', 'chown', 'chmod'],
  repeated: ['exclude'],
  bools: ['link', 'parents']
}

const ADD_FLAGS: FlagSpec = {
  values: ['chown', 'chmod', 'checksum'],
  repeated: ['exclude'],
  bools: ['link', 'keep-git-dir'],
  unsupported: {
    unpack: 'not implemented yet'
  }
}

/**
 * A git source, as BuildKit tells one (its gitutil.ParseGitRef): an
 * scp-like `git@host:path`, a `git://` or `ssh://` URL, or an http(s) URL
 * whose path ends in `.git`; the `#ref:subdir` fragment is optional.
 */
const GIT_SOURCE = /^(git@[^:]+:|git:\/\/|ssh:\/\/|https?:\/\/[^#]+\.git(#|$))/i
const URL_SOURCE = /^https?:\/\//i
const CHECKSUM = /^sha256:[0-9a-f]{64}$/

/** A remote ADD source: a git repository or a URL; undefined for a context path. */
function remoteSource (ins: Instruction, path: string, checksum: string | undefined, keepGitDir: boolean): CopySourceRef | undefined {
  if (GIT_SOURCE.test(path)) {
    const hash = path.indexOf('#')
    const remote = hash < 0 ? path : path.slice(0, hash)
    const fragment = hash < 0 ? '' : path.slice(hash + 1)
    const colon = fragment.indexOf(':')
    const ref = colon < 0 ? fragment : fragment.slice(0, colon)
    const subdir = colon < 0 ? '' : fragment.slice(colon + 1)
    if (checksum !== undefined) throw ins.syntaxError('--checksum is for URLs; a git source is pinned by its ref (give a commit hash)')
    if (ref.startsWith('-') || subdir.split('/').includes('..')) throw ins.syntaxError(`malformed git reference ${path}`, 'URL#ref:subdir, the subdir inside the repository')
    return { kind: 'git', remote, ...(ref === '' ? {} : { ref }), ...(subdir === '' ? {} : { subdir }), keepGitDir }
  }
  if (URL_SOURCE.test(path)) {
    if (!URL.canParse(path)) throw ins.syntaxError(`malformed URL ${path}`)
    return { kind: 'url', url: path, ...(checksum === undefined ? {} : { checksum }) }
  }
  return undefined
}

/** --from: an earlier stage by name or index, else an image reference. */
export function copyFrom (ins: Instruction, value: string | undefined): CopyFrom {
  if (value === undefined) return { kind: 'context' }
  const ref = ins.word(value)
  const { stages } = ins.ctx
  const current = ins.stage
  const stage = findStage(stages, ref)
  if (stage !== undefined && stage.index < current.index) return { kind: 'stage', stage: stage.index }
  if (stage !== undefined || /^\d+$/.test(ref)) {
    throw new UnknownStageError(ins.loc, `${ins.keyword} --from=${ref}: no earlier stage has that ${/^\d+$/.test(ref) ? 'index' : 'name'}`,
      'a stage can only copy from stages defined before it')
  }
  if (/[/:@.]/.test(ref)) return { kind: 'image', ref }
  const names = stages.slice(0, current.index).flatMap(s => (s.name === undefined ? [] : [s.name]))
  throw new UnknownStageError(ins.loc, `${ins.keyword} --from=${ref}: no stage named '${ref}'`,
    names.length > 0
      ? `stages defined so far: ${names.join(', ')}; to copy from an image give its full reference, e.g. docker.io/library/${ref}:latest`
      : `to copy from an image give its full reference, e.g. docker.io/library/${ref}:latest`)
}

/** COPY and ADD: [flags] src... dest, JSON form, heredocs as inline sources. */
export function handleCopy (ins: Instruction): void {
  const add = ins.keyword === 'ADD'
  const flags = parseFlags(ins.raw.args, add ? ADD_FLAGS : COPY_FLAGS, ins.keyword, ins.loc)
  const json = parseJsonForm(flags.rest)
  const words = json ?? splitRawWords(flags.rest, ins.ctx.escape)
  if (words.length < 2) throw ins.syntaxError('requires at least two arguments, but got ' + String(words.length), `${ins.keyword} <src>... <dest>`)
  const heredocs = [...ins.raw.heredocs]
  const rawChecksum = flags.values.get('checksum')
  const checksum = rawChecksum === undefined ? undefined : ins.word(rawChecksum)
  if (checksum !== undefined && !CHECKSUM.test(checksum)) throw ins.syntaxError(`invalid --checksum=${checksum}`, 'give sha256: and 64 lowercase hex digits')
  const keepGitDir = flags.bools.has('keep-git-dir')
  const exclude = (flags.repeated.get('exclude') ?? []).map(p => ins.word(p))
  const sources: CopySourceRef[] = words.slice(0, -1).map((word): CopySourceRef => {
    if (json === undefined && isHeredocWord(word)) {
      const doc = heredocs.shift()
      if (doc !== undefined) return { kind: 'inline', name: doc.name, content: doc.expand ? ins.heredoc(doc.content) : doc.content }
    }
    const path = json === undefined ? ins.word(word) : word
    const remote = add ? remoteSource(ins, path, checksum, keepGitDir) : undefined
    if (remote !== undefined) return remote
    if (/^(https?:\/\/|git@|git:\/\/|ssh:\/\/)/i.test(path)) {
      throw new UnsupportedFeatureError(ins.loc, `COPY cannot fetch ${path}`, 'ADD downloads URLs and git repositories; COPY reads the context only')
    }
    return { kind: 'path', path }
  })
  if (checksum !== undefined && !sources.some(s => s.kind === 'url')) throw ins.syntaxError('--checksum needs a URL source')
  if (sources.some(s => s.kind === 'url' || s.kind === 'git') && (exclude.length > 0 || flags.bools.has('parents'))) {
    throw ins.syntaxError('--exclude and --parents apply to context and stage sources, not to URLs or git repositories')
  }
  const dest = json === undefined ? ins.word(words.at(-1) ?? '') : words.at(-1) ?? ''
  if (dest === '') throw ins.syntaxError('destination is empty')
  const chmod = flags.values.get('chmod')
  const chown = flags.values.get('chown')
  const expandedChmod = chmod === undefined ? undefined : ins.word(chmod)
  if (expandedChmod !== undefined && !/^[0-7]{3,4}$/.test(expandedChmod)) {
    throw ins.syntaxError(`invalid --chmod=${expandedChmod}`, 'give an octal mode such as 755 or 0644')
  }
  ins.add({
    op: 'copy',
    add,
    from: copyFrom(ins, flags.values.get('from')),
    sources,
    dest,
    ...(chown === undefined ? {} : { chown: ins.word(chown) }),
    ...(expandedChmod === undefined ? {} : { chmod: expandedChmod }),
    link: flags.bools.has('link'),
    ...(flags.bools.has('parents') ? { parents: true } : {}),
    ...(exclude.length > 0 ? { exclude } : {}),
    source: ins.loc
  })
}
