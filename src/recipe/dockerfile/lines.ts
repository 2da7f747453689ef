import { UnterminatedHeredocError } from '../errors.ts'
import type { Directives } from './directives.ts'
import { chompTabs, findHeredocs } from './heredoc.ts'
import type { Heredoc } from './heredoc.ts'

/** One instruction as written: continuations joined, comments dropped, heredocs read. */
export interface RawInstruction {
  /** Instruction keyword as written (any case). */
  keyword: string
  /** Everything after the keyword, continuation lines joined. */
  args: string
  line: number
  column: number
  heredocs: Heredoc[]
}

const HEREDOC_INSTRUCTIONS = new Set(['run', 'copy', 'add'])

function isComment (line: string): boolean {
  return line.trimStart().startsWith('#')
}

function isBlank (line: string): boolean {
  return line.trim() === ''
}

/** Strips a trailing escape (plus trailing blanks); `continued` tells whether there was one. */
function trimContinuation (line: string, escape: string): { text: string, continued: boolean } {
  const trimmed = line.replace(/[ \t]+$/, '')
  if (trimmed.endsWith(escape)) return { text: trimmed.slice(0, -1), continued: true }
  return { text: line, continued: false }
}

/**
 * Splits a Dockerfile body into raw instructions, following BuildKit's parser:
 * comment and blank lines are skipped (also inside continuations), a trailing
 * escape continues the line, and RUN/COPY/ADD heredocs consume the lines after
 * the instruction up to their terminators.
 */
export function splitInstructions (lines: readonly string[], directives: Directives, file: string): RawInstruction[] {
  const result: RawInstruction[] = []
  let i = directives.lines
  while (i < lines.length) {
    const first = lines[i] ?? ''
    const line = i + 1
    i++
    if (isBlank(first) || isComment(first)) continue
    const column = first.length - first.trimStart().length + 1
    let { text, continued } = trimContinuation(first.trimStart(), directives.escape)
    while (continued && i < lines.length) {
      const next = lines[i] ?? ''
      i++
      if (isComment(next) || isBlank(next)) continue
      const part = trimContinuation(next, directives.escape)
      text += part.text
      continued = part.continued
    }
    const m = /^(\S+)\s*([\s\S]*)$/.exec(text)
    const keyword = m?.[1] ?? text
    const args = (m?.[2] ?? '').trim()
    const heredocs: Heredoc[] = []
    if (HEREDOC_INSTRUCTIONS.has(keyword.toLowerCase())) {
      for (const marker of findHeredocs(args)) {
        let content = ''
        let terminated = false
        while (i < lines.length) {
          const body = lines[i] ?? ''
          i++
          if ((marker.chomp ? chompTabs(body) : body) === marker.name) {
            terminated = true
            break
          }
          content += `${marker.chomp ? chompTabs(body) : body}\n`
        }
        if (!terminated) {
          throw new UnterminatedHeredocError({ file, line, column },
            `unterminated heredoc <<${marker.name} opened by ${keyword.toUpperCase()} on line ${line}`,
            `end it with a line holding only ${marker.name}`)
        }
        heredocs.push({ ...marker, content, line })
      }
    }
    result.push({ keyword, args, line, column, heredocs })
  }
  return result
}
