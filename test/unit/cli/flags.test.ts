import { describe, expect, it } from 'vitest'
import { durationFlag, jobTimeoutFlag } from '../../../src/cli/flags.ts'

describe('duration flags', () => {
  it('read 1500ms, 30s and 2m alike on every flag', () => {
    for (const bareUnit of [1, 1000]) {
      expect(durationFlag('--x', '1500ms', bareUnit)).toBe(1500)
      expect(durationFlag('--x', '30s', bareUnit)).toBe(30_000)
      expect(durationFlag('--x', '2m', bareUnit)).toBe(120_000)
    }
  })

  it('keep the old unit of a bare number: milliseconds for --offer-window and --drain-timeout, seconds for --timeout', () => {
    expect(durationFlag('--offer-window', '3000', 1, 600_000)).toBe(3000)
    expect(durationFlag('--drain-timeout', '90000')).toBe(90_000)
    expect(jobTimeoutFlag('200')).toBe(200_000)
    expect(jobTimeoutFlag('4m')).toBe(240_000)
    expect(jobTimeoutFlag(undefined)).toBeUndefined()
  })

  it('refuse garbage, zero and values over the limit as usage errors naming the flag', () => {
    for (const [text, max] of [['soon', undefined], ['0', 600_000], ['11m', 600_000]] as const) {
      let caught: unknown
      try { durationFlag('--offer-window', text, 1, max) } catch (err) { caught = err }
      expect(caught).toMatchObject({ name: 'CliError', exitCode: 2 })
      expect((caught as Error).message).toMatch(/^--offer-window/)
    }
    expect(() => jobTimeoutFlag('8d')).toThrow(/--timeout 8d/)
  })
})
