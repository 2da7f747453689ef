/**
 * The exec (JSON) form of an instruction: a JSON array of strings. Anything
 * else, even text starting with '[', is the shell form (as in BuildKit).
 */
export function parseJsonForm (args: string): string[] | undefined {
  const text = args.trim()
  if (!text.startsWith('[')) return undefined
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (!Array.isArray(value) || !value.every((v): v is string => typeof v === 'string')) return undefined
  return value
}
