/**
 * CLI commands stay thin (docs/architecture.md, "Allowed imports"): no file
 * in src/cli/commands imports another one, statically or with import().
 * What two commands share lives beside them in src/cli (flags, output,
 * services) or below in src/node, never in a command file.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import { describe, expect, it } from 'vitest'

const REPO = join(import.meta.dirname, '../../..')
const COMMANDS = join(REPO, 'src/cli/commands')
const IMPORT = /(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g

/** Every relative import of a command file, as `file -> resolved path`. */
function commandImports (): Array<{ file: string, target: string }> {
  return readdirSync(COMMANDS, { withFileTypes: true, recursive: true })
    .filter(e => e.isFile() && /\.(ts|mts|mjs)$/.test(e.name))
    .map(e => join(e.parentPath, e.name))
    .flatMap(file => [...readFileSync(file, 'utf8').matchAll(IMPORT)].map(m => ({
      file: relative(REPO, file),
      target: relative(REPO, normalize(join(dirname(file), (m[1] ?? m[2]) as string)))
    })))
}

describe('CLI commands (docs/architecture.md)', () => {
  const imports = commandImports()

  it('reads the imports of every command', () => {
    // Each command imports its context type at least: an empty list would mean the pattern no longer matches.
    const files = new Set(imports.map(i => i.file))
    expect(files.size).toBe(readdirSync(COMMANDS).filter(n => n.endsWith('.ts')).length)
    expect(imports.some(i => i.target === 'src/node/index.ts')).toBe(true)
  })

  it('import no other command file', () => {
    const between = imports.filter(i => i.target.startsWith('src/cli/commands/')).map(i => `${i.file} -> ${i.target}`)
    expect(between).toEqual([])
  })
})
