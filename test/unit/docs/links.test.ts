import { describe, it, expect } from 'vitest'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '..', '..', '..')
const files = [
  join(root, 'README.md'),
  ...['docs', 'protocols'].flatMap(d => readdirSync(join(root, d)).filter(f => f.endsWith('.md')).map(f => join(root, d, f)))
]

describe('documentation links', () => {
  it('every relative link in README, docs/ and protocols/ points at a file that exists', () => {
    const broken: string[] = []
    for (const file of files) {
      const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '')
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = (m[1] as string).split('#')[0] as string
        if (target === '' || /^[a-z]+:/i.test(target)) continue
        if (!existsSync(resolve(dirname(file), target))) broken.push(`${file.slice(root.length + 1)} -> ${m[1] as string}`)
      }
    }
    expect(broken).toEqual([])
  })
})
