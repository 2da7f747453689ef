import { probeSandboxes, createSandbox } from '../../../src/build/sandbox/index.ts'
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
