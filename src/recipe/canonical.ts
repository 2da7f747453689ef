import type { Step } from './ir.ts'

/** Distributes Omit over the union so each variant keeps its own fields. */
export type StepBody<S extends Step = Step> = S extends Step ? Omit<S, 'canonical'> : never

/** JSON with object keys sorted at every level: same value, same text. */
export function stableJson (value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

/**
 * Completes a step with its canonical form: the op in capitals followed by the
 * step's fields (without its source location) as stable JSON. Whitespace,
 * comments, instruction case and line numbers do not change it; anything that
 * changes what the step does does.
 */
export function withCanonical<S extends Step> (body: StepBody<S>): S {
  const { source: _source, ...fields } = body
  const canonical = `${body.op.toUpperCase()} ${stableJson(fields)}`
  return { ...body, canonical } as unknown as S
}
