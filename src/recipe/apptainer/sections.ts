import { MissingBaseError, RecipeSyntaxError, UnknownInstructionError } from '../errors.ts'
import { didYouMean } from '../suggest.ts'

/** Sections of a definition file about the whole image. */
const IMAGE_SECTIONS = ['setup', 'files', 'post', 'environment', 'runscript', 'startscript', 'test', 'labels', 'help', 'arguments'] as const
/** SCIF app sections (`%appinstall NAME`...): see ./apps.ts. */
export const APP_SECTIONS = ['appinstall', 'appfiles', 'appenv', 'apptest', 'apphelp', 'apprun', 'appstart', 'applabels'] as const
/** Sections of a definition file that kiln understands. */
export const SECTIONS = [...IMAGE_SECTIONS, ...APP_SECTIONS] as const
export type SectionName = typeof SECTIONS[number]
export type AppSectionName = typeof APP_SECTIONS[number]

export interface HeaderEntry {
  /** Key in lower case. */
  key: string
  value: string
  line: number
}

export interface Section {
  name: SectionName
  /** What follows the section name on its line (`-c /bin/bash`, `from build`, an app's name). */
  args: string
  /** The lines after it up to the next section, each ending in '\n'. */
  body: string
  line: number
  /** Line of the first body line. */
  bodyLine: number
}

export interface DefStage {
  header: HeaderEntry[]
  sections: Section[]
  line: number
}

const SECTION_LINE = /^%([A-Za-z]\w*)(?:[ \t]+(.*?))?[ \t]*$/
const HEADER_LINE = /^([A-Za-z][A-Za-z0-9_-]*)[ \t]*:[ \t]*(.*?)[ \t]*$/
const BOOTSTRAP_LINE = /^[ \t]*bootstrap[ \t]*:/i

function isSection (name: string): name is SectionName {
  return (SECTIONS as readonly string[]).includes(name)
}

/** A `%name` line: a known section, an error, or (inside a body) plain script text. */
function sectionOf (line: string, lineNo: number, file: string, inBody: boolean): { name: SectionName, args: string } | undefined {
  const m = SECTION_LINE.exec(line.trimStart())
  if (m === null) return undefined
  const name = (m[1] ?? '').toLowerCase()
  if (isSection(name)) return { name, args: m[2] ?? '' }
  const loc = { file, line: lineNo, column: line.length - line.trimStart().length + 1 }
  const hint = didYouMean(name, SECTIONS)
  if (!inBody || hint !== undefined) {
    throw new UnknownInstructionError(loc, `unknown section %${name}`, hint === undefined ? `sections: ${SECTIONS.map(s => `%${s}`).join(' ')}` : `did you mean %${hint.slice('did you mean '.length)}`)
  }
  return undefined
}

/**
 * Splits a definition file into stages (each opened by a `Bootstrap:` line),
 * their header entries and their sections. Comments and blank lines in the
 * header are skipped; section bodies are kept as written.
 */
export function splitDefinition (lines: readonly string[], file: string): DefStage[] {
  const stages: DefStage[] = []
  let stage: DefStage | undefined
  let section: Section | undefined
  for (const [i, line] of lines.entries()) {
    const lineNo = i + 1
    if (BOOTSTRAP_LINE.test(line)) {
      stage = { header: [], sections: [], line: lineNo }
      stages.push(stage)
      section = undefined
    }
    const found = sectionOf(line, lineNo, file, section !== undefined)
    if (found !== undefined) {
      if (stage === undefined) throw new MissingBaseError({ file, line: lineNo }, `%${found.name} before the Bootstrap header`, 'start the file with Bootstrap: docker and From: <image>')
      section = { ...found, body: '', line: lineNo, bodyLine: lineNo + 1 }
      stage.sections.push(section)
      continue
    }
    if (section !== undefined) {
      section.body += `${line}\n`
      continue
    }
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue
    const m = HEADER_LINE.exec(line.trim())
    if (m === null) throw new RecipeSyntaxError({ file, line: lineNo }, `expected a header 'Key: value' or a %section, got '${line.trim()}'`)
    if (stage === undefined) throw new MissingBaseError({ file, line: lineNo }, `header ${m[1] ?? ''} before Bootstrap`, 'the first header of each stage is Bootstrap:')
    stage.header.push({ key: (m[1] ?? '').toLowerCase(), value: m[2] ?? '', line: lineNo })
  }
  // Blank lines between sections belong to no one: drop them from bodies.
  for (const s of stages.flatMap(st => st.sections)) s.body = s.body.trimEnd() === '' ? '' : `${s.body.trimEnd()}\n`
  return stages
}
