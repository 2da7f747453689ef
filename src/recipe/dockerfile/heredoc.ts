import { splitRawWords } from './words.ts'

export interface HeredocMarker {
  /** Delimiter with quotes removed. */
  name: string
  /** false when the delimiter was quoted: the content is taken literally. */
  expand: boolean
  /** `<<-`: leading tabs are stripped from the content and the terminator. */
  chomp: boolean
}

export interface Heredoc extends HeredocMarker {
  /** Content, each line ending in '\n', tabs already stripped for `<<-`. */
  content: string
  /** Line of the instruction that opened it. */
  line: number
}

const MARKER = /^(\d*)<<(-?)([^<]*)$/

/** Heredoc markers in an instruction's arguments, in order (BuildKit's heredocsFromLine). */
export function findHeredocs (args: string): HeredocMarker[] {
  const markers: HeredocMarker[] = []
  for (const word of splitRawWords(args, '\\')) {
    const m = MARKER.exec(word)
    const rest = m?.[3] ?? ''
    if (m === null || rest === '') continue
    const name = rest.replace(/\\(.)/g, '$1').replace(/["']/g, '')
    if (name === '' || /\s/.test(name)) continue
    markers.push({ name, expand: !/["'\\]/.test(rest), chomp: m[2] === '-' })
  }
  return markers
}

/** True when a raw argument word is a heredoc marker. */
export function isHeredocWord (word: string): boolean {
  return findHeredocs(word).length === 1
}

export function chompTabs (line: string): string {
  return line.replace(/^\t+/, '')
}
