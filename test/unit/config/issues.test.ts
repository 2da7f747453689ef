import { describe, it, expect } from 'vitest'
import { z } from 'zod'
import { expectedText, formatIssues } from '../../../src/config/issues.ts'
import { KilnConfigSchema } from '../../../src/config/schema.ts'

function issuesOf (schema: z.ZodType, value: unknown): string {
  const r = schema.safeParse(value)
  if (r.success) throw new Error('expected a failure')
  return formatIssues('kiln.yaml', value, r.error)
}

describe('zod issues for people', () => {
  it('says the key, what was expected and what was given, never zod\'s own wording', () => {
    const text = issuesOf(KilnConfigSchema, { store: { quota: true }, gateway: { listen: 5000 }, logLevel: 'loud' })
    expect(text).toContain('kiln.yaml: store.quota: expected a size like 500GiB or 20G, or a number of bytes, got true (a boolean)')
    expect(text).toContain('kiln.yaml: gateway.listen: expected a string, got 5000 (a number)')
    expect(text).toMatch(/kiln\.yaml: logLevel: expected one of "trace", "debug", .*"silent", got "loud" \(a string\)/)
    expect(text).not.toMatch(/Invalid (input|option)|received/)
  })

  it('keeps a schema\'s own message and names both branches of a union without one', () => {
    const size = KilnConfigSchema.safeParse({ store: { quota: '200x' } })
    expect(size.success).toBe(false)
    expect(expectedText(size.error?.issues[0] as z.core.$ZodIssue)).toBe('a size like 500GiB or 20G')
    expect(issuesOf(z.union([z.number(), z.array(z.string())]), 'x')).toBe('kiln.yaml: expected a number or a list, got "x" (a string)')
  })

  it('names unknown keys as such', () => {
    expect(issuesOf(KilnConfigSchema, { store: { quoat: 1 } })).toBe('kiln.yaml: unknown key store.quoat (check the spelling; see docs/configuration.md)')
  })
})
