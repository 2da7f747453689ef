import { describe, it, expect } from 'vitest'
import { existsSync } from 'node:fs'
import { runKiln } from '../../helpers/cli.ts'
import { haveTools } from '../../helpers/tools.ts'

describe.skipIf(!haveTools('busybox', 'skopeo'))('npm run demo (kiln demo)', () => {
  it('builds, rebuilds from cache, serves, pulls back and shows what the recipe wrote, then cleans up', async () => {
    const r = await runKiln(['demo'], { timeoutMs: 180_000 })
    expect(r.stderr).not.toMatch(/error/i)
    expect(r.code).toBe(0)
    const built = [...r.stdout.matchAll(/^built (sha256:[a-f0-9]{64})$/gm)].map(m => m[1])
    // base, hello, hello again: the rebuild gives the same digest, all from cache
    expect(built).toHaveLength(3)
    expect(built[2]).toBe(built[1])
    expect(r.stdout).toMatch(/4 steps \(4 cached\)/)
    expect(r.stdout).toContain(`"Digest": "${built[1] ?? ''}"`)
    expect(r.stdout).toMatch(/Hello from an image built by kiln, without root\.\nbuilt as uid 0 in a user namespace on /)
    const dir = /everything happens in (\S+)/.exec(r.stdout)?.[1]
    expect(dir).toBeDefined()
    expect(existsSync(dir ?? '/')).toBe(false)
  }, 200_000)
})
