/**
 * `--network[=MODE]` beside the `<context>` argument (src/cli/flags.ts):
 * modes, the old bare flag, and the bare flag that took the context word.
 */
import { describe, expect, it } from 'vitest'
import { networkAndContext } from '../../../src/cli/flags.ts'

describe('networkAndContext', () => {
  it('reads the modes, the bare flag as default and no flag as none', () => {
    expect(networkAndContext(undefined, 'ctx')).toEqual({ network: 'none', contextArg: 'ctx' })
    expect(networkAndContext(true, 'ctx')).toEqual({ network: 'default', contextArg: 'ctx' })
    expect(networkAndContext('default', 'ctx')).toEqual({ network: 'default', contextArg: 'ctx' })
    expect(networkAndContext('host', 'ctx')).toEqual({ network: 'default', contextArg: 'ctx' })
    expect(networkAndContext('none', 'ctx')).toEqual({ network: 'none', contextArg: 'ctx' })
  })

  it('gives back the context word a bare --network took as its value', () => {
    expect(networkAndContext('./app', undefined)).toEqual({ network: 'default', contextArg: './app' })
  })

  it('refuses an unknown mode and a missing context as usage errors', () => {
    expect(() => networkAndContext('bridge', 'ctx')).toThrow(expect.objectContaining({ name: 'CliError', exitCode: 2, message: expect.stringContaining('--network=bridge: expected default or none') }))
    expect(() => networkAndContext('none', undefined)).toThrow(expect.objectContaining({ name: 'CliError', exitCode: 2 }))
    expect(() => networkAndContext(undefined, undefined)).toThrow(/missing required argument 'context'/)
  })
})
