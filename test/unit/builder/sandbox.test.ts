import { probeSandboxes, createSandbox } from '../../../src/builder/sandbox/index.ts'
import { sandboxSuite } from './sandbox-suite.ts'
import { haveTools } from '../../helpers/tools.ts'
import { describe, expect, it } from 'vitest'

const probe = await probeSandboxes()
console.log(`sandbox probe: selected ${probe.selected ?? 'none'}; ${probe.drivers.map(d => `${d.driver}=${d.ok ? 'ok' : d.detail}`).join(', ')}`)

describe('sandbox probe', () => {
  it('selects the first working driver in preference order', () => {
    const firstOk = probe.drivers.find(d => d.ok)
    expect(probe.selected).toBe(firstOk?.driver)
  })
  it.skipIf(!haveTools('bwrap', 'unshare', 'proot'))('finds every installed driver working on this node', () => {
    expect(probe.drivers.map(d => [d.driver, d.ok])).toEqual([['bwrap', true], ['unshare', true], ['proot', true]])
  })
})

for (const d of probe.drivers.filter(d => d.ok)) sandboxSuite(d.driver, async () => await createSandbox({ driver: d.driver }))

// Runs after the driver suites above (same file, in order): their timeouts and aborts kill proot mid-step.
describe.skipIf(!probe.drivers.some(d => d.driver === 'proot' && d.ok))('proot temp files', () => {
  it('leaves no /tmp/proot-PID-* or /tmp/prooted-PID-* of a dead proot of ours behind', async () => {
    const { readdirSync, lstatSync } = await import('node:fs')
    const { join } = await import('node:path')
    const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' } }
    // proot writes there whatever TMPDIR says.
    const stale = readdirSync('/tmp').filter(name => {
      const m = /^proot(?:ed)?-(\d+)-[A-Za-z0-9]+$/.exec(name)
      return m !== null && !alive(Number(m[1])) && lstatSync(join('/tmp', name)).uid === process.getuid?.()
    })
    expect(stale).toEqual([])
  })
})
