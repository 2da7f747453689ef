import { UndefinedVariableError } from '../errors.ts'

const TEMPLATE = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g
const ARGUMENT_LINE = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/

/** Default values from %arguments bodies (`NAME=value`, optionally quoted). */
export function parseArguments (body: string): Map<string, string> {
  const args = new Map<string, string>()
  for (const line of body.split('\n')) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue
    const m = ARGUMENT_LINE.exec(line)
    if (m === null) continue
    const raw = m[2] ?? ''
    const quoted = /^(["'])(.*)\1$/.exec(raw)
    args.set(m[1] ?? '', quoted?.[2] ?? raw)
  }
  return args
}

/** Replaces `{{ NAME }}` on each line; a name without value is an error at its line. */
export function applyTemplates (lines: readonly string[], values: ReadonlyMap<string, string>, file: string): string[] {
  return lines.map((line, i) => line.replace(TEMPLATE, (_, name: string) => {
    const value = values.get(name)
    if (value === undefined) {
      throw new UndefinedVariableError({ file, line: i + 1, column: line.indexOf('{{') + 1 },
        `build argument ${name} is not defined`, `give it a default in %arguments or pass --build-arg ${name}=...`)
    }
    return value
  }))
}
