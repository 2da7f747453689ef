/** Temp dirs a test makes and removes in one call (afterEach/afterAll). */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface TempDirs {
  make: (prefix?: string) => string
  cleanup: () => void
}

export function tempDirs (defaultPrefix = 'kiln-test-'): TempDirs {
  const made: string[] = []
  return {
    make: (prefix = defaultPrefix) => {
      const d = mkdtempSync(join(tmpdir(), prefix))
      made.push(d)
      return d
    },
    cleanup: () => { for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true }) }
  }
}
