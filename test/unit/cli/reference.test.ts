import { describe, it, expect } from 'vitest'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterText, cliReference } from '../../../src/cli/reference.ts'
import { buildProgram, registerAll } from '../../../src/cli/main.ts'
import type { Command } from 'commander'

describe('docs/cli.md', () => {
  it('is up to date with the commands (run `npm run docs:cli` to regenerate)', async () => {
    const current = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'cli.md'), 'utf8')
    expect(current).toBe(await cliReference())
  })

  it('every command has a description, and every leaf command an example', async () => {
    const { program, ctx } = buildProgram()
    await registerAll(program, ctx)
    const missing: string[] = []
    const visit = (c: Command, path: string): void => {
      for (const sub of c.commands) {
        const name = `${path} ${sub.name()}`.trim()
        if (sub.description() === '') missing.push(`${name}: no description`)
        if (sub.commands.length === 0) {
          if (!/Example/.test(afterText(sub))) missing.push(`${name}: no example in --help`)
        }
        visit(sub, name)
      }
    }
    visit(program, '')
    expect(missing).toEqual([])
  })
})
