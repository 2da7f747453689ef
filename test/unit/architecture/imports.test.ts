/**
 * The module graph stays as docs/architecture.md draws it: every import
 * between modules (folders under src/, agent/, protocols/) is one the
 * "Allowed imports" table lists, and no two modules import each other,
 * directly or around a circle.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join, normalize, relative, sep } from 'node:path'
import { describe, expect, it } from 'vitest'

const REPO = join(import.meta.dirname, '../../..')
const IMPORT = /(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g

/** The module a repository path belongs to, or undefined outside src/, agent/ and protocols/. */
function moduleOf (path: string): string | undefined {
  const parts = relative(REPO, path).split(sep)
  if (parts[0] === 'src') return parts.length > 2 ? `src/${parts[1] as string}` : 'src'
  if (parts[0] === 'agent' || parts[0] === 'protocols') return parts[0]
  return undefined
}

function sourceFiles (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter(e => e.isFile() && /\.(ts|mts|mjs)$/.test(e.name))
    .map(e => join(e.parentPath, e.name))
}

/** module -> module -> the files that make the arrow. */
function importGraph (): Map<string, Map<string, string[]>> {
  const graph = new Map<string, Map<string, string[]>>()
  for (const top of ['src', 'agent', 'protocols']) {
    for (const file of sourceFiles(join(REPO, top))) {
      const from = moduleOf(file)
      if (from === undefined) continue
      for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
        const to = moduleOf(normalize(join(dirname(file), (m[1] ?? m[2]) as string)))
        if (to === undefined || to === from) continue
        const arrows = graph.get(from) ?? new Map<string, string[]>()
        graph.set(from, arrows)
        arrows.set(to, [...(arrows.get(to) ?? []), relative(REPO, file)])
      }
    }
  }
  return graph
}

/** The table of docs/architecture.md: module -> the modules it may import ('*' for every one). */
function allowedArrows (): Map<string, Set<string>> {
  const doc = readFileSync(join(REPO, 'docs/architecture.md'), 'utf8')
  const section = doc.split(/^## Allowed imports$/m)[1]?.split(/^## /m)[0] ?? ''
  const allowed = new Map<string, Set<string>>()
  for (const line of section.split('\n')) {
    const cells = /^\|\s*`([^`]+)`\s*\|(.*)\|\s*$/.exec(line)
    if (cells === null) continue
    const targets = cells[2] as string
    allowed.set(cells[1] as string, targets.includes('every module') ? new Set(['*']) : new Set([...targets.matchAll(/`([^`]+)`/g)].map(t => t[1] as string)))
  }
  return allowed
}

describe('module imports (docs/architecture.md)', () => {
  const graph = importGraph()
  const allowed = allowedArrows()

  it('reads a table that names every module', () => {
    const modules = new Set([...graph.keys(), ...[...graph.values()].flatMap(a => [...a.keys()])])
    expect(modules.size).toBeGreaterThan(10)
    expect([...modules].filter(m => m !== 'src' && !allowed.has(m))).toEqual([])
  })

  it('has no arrow the table does not allow', () => {
    const forbidden: string[] = []
    for (const [from, arrows] of graph) {
      const may = allowed.get(from) ?? new Set<string>()
      for (const [to, files] of arrows) {
        if (!may.has('*') && !may.has(to)) forbidden.push(`${from} -> ${to} (${files.join(', ')})`)
      }
    }
    expect(forbidden).toEqual([])
  })

  it('has no cycle between modules', () => {
    const cycles: string[] = []
    const state = new Map<string, 'open' | 'done'>()
    const path: string[] = []
    const visit = (m: string): void => {
      state.set(m, 'open')
      path.push(m)
      for (const to of graph.get(m)?.keys() ?? []) {
        if (state.get(to) === 'open') cycles.push([...path.slice(path.indexOf(to)), to].join(' -> '))
        else if (state.get(to) === undefined) visit(to)
      }
      path.pop()
      state.set(m, 'done')
    }
    for (const m of graph.keys()) if (state.get(m) === undefined) visit(m)
    expect(cycles).toEqual([])
  })
})
