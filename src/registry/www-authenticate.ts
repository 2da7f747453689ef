/**
 * Parses a `WWW-Authenticate` challenge (RFC 9110 §11.6.1) as registries send
 * it: `Bearer realm="https://auth/token",service="registry",scope="..."` or
 * `Basic realm="..."`. Only the first challenge is used.
 */

export interface Challenge {
  scheme: 'bearer' | 'basic'
  params: Record<string, string>
}

export function parseChallenge (header: string | null | undefined): Challenge | undefined {
  if (header === null || header === undefined) return undefined
  const m = /^\s*(Bearer|Basic)\b\s*(.*)$/i.exec(header)
  if (m === null) return undefined
  const params: Record<string, string> = {}
  const re = /([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))\s*,?/gy
  const rest = m[2] as string
  re.lastIndex = 0
  let p: RegExpExecArray | null
  while ((p = re.exec(rest)) !== null) {
    params[(p[1] as string).toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] as string)
    if (re.lastIndex >= rest.length) break
  }
  return { scheme: (m[1] as string).toLowerCase() as 'bearer' | 'basic', params }
}
