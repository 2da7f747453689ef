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
  bools: ['link'],
  unsupported: {
    parents: 'not implemented yet: copy each directory with its own COPY',
    exclude: 'not implemented yet: leave the files out of the build context instead'
  }
}

const ADD_FLAGS: FlagSpec = {
  values: ['chown', 'chmod'],
  bools: ['link'],
  unsupported: {
    checksum: 'ADD from URLs is not supported, so there is nothing to check',
    'keep-git-dir': 'ADD from git repositories is not supported',
    exclude: 'not implemented yet: leave the files out of the build context instead',
    unpack: 'not implemented yet'
  }
}

const REMOTE_SOURCE = /^(https?:\/\/|git@|git:\/\/|ssh:\/\/)/i

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
  const sources: CopySourceRef[] = words.slice(0, -1).map((word): CopySourceRef => {
    if (json === undefined && isHeredocWord(word)) {
      const doc = heredocs.shift()
      if (doc !== undefined) return { kind: 'inline', name: doc.name, content: doc.expand ? ins.heredoc(doc.content) : doc.content }
    }
    const path = json === undefined ? ins.word(word) : word
    if (add && REMOTE_SOURCE.test(path)) {
      throw new UnsupportedFeatureError(ins.loc, `ADD from a URL or git repository is not supported: ${path}`,
        'kiln builds from the signed context only; download the file into the context and COPY it')
    }
    return { kind: 'path', path }
  })
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
    source: ins.loc
  })
}
