/**
 * Matching a job's requirements (protocols/job.md §2) against an agent's
 * capabilities (`NAME` or `NAME=VALUE`).
 */
import { parseRequirement } from '../../protocols/job.ts'

function compareVersions (a: string, b: string): number | undefined {
  const pa = a.split('.').map(Number)
  const pb = b.split('.').map(Number)
  if ([...pa, ...pb].some(n => !Number.isInteger(n))) return undefined
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d !== 0) return Math.sign(d)
  }
  return 0
}

/** Whether one requirement is met by one of the capabilities. */
export function satisfies (requirement: string, capabilities: readonly string[]): boolean {
  const req = parseRequirement(requirement)
  return capabilities.some(cap => {
    const eq = cap.indexOf('=')
    const name = eq === -1 ? cap : cap.slice(0, eq)
    const value = eq === -1 ? undefined : cap.slice(eq + 1)
    if (name !== req.name) return false
    if (req.op === undefined) return true
    if (value === undefined || req.value === undefined) return false
    if (req.op === '=') return value === req.value
    const c = compareVersions(value, req.value)
    if (c === undefined) return false
    return { '>=': c >= 0, '<=': c <= 0, '>': c > 0, '<': c < 0 }[req.op]
  })
}

/** The requirements not met, for a decline reason. */
export function unmet (requirements: readonly string[], capabilities: readonly string[]): string[] {
  return requirements.filter(r => !satisfies(r, capabilities))
}
