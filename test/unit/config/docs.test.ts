import { describe, it, expect } from 'vitest'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { KilnConfigSchema } from '../../../src/config/index.ts'

/** Every key path of a zod object schema, e.g. `gateway.tls.cert`. */
function keyPaths (schema: z.ZodType, prefix = ''): string[] {
  let s: z.ZodType = schema
  // Unwrap defaults and optionals to reach the object inside.
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap() as z.ZodType
  if (!(s instanceof z.ZodObject)) return []
  return Object.entries(s.shape as Record<string, z.ZodType>).flatMap(([k, v]) => [`${prefix}${k}`, ...keyPaths(v, `${prefix}${k}.`)])
}

describe('docs/configuration.md', () => {
  it('shows every key of kiln.yaml', () => {
    const doc = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'configuration.md'), 'utf8')
    const block = doc.slice(doc.indexOf('## All keys'))
    const missing = keyPaths(KilnConfigSchema).filter(path => {
      const leaf = path.split('.').pop() as string
      return !new RegExp(`^\\s*#?\\s*${leaf}:`, 'm').test(block) && !block.includes(`${leaf}:`)
    })
    expect(missing).toEqual([])
  })
})
