/**
 * HEALTHCHECK in the image config: the flags a Dockerfile gives are kept as
 * Docker keeps them (nanoseconds, and the retry count), not only the test.
 */
import { describe, expect, it } from 'vitest'
import { applyConfigStep, durationNs } from '../../../src/builder/config-steps.ts'
import type { Config } from '../../../src/builder/stage.ts'
import { parseDockerfile } from '../../../src/recipe/index.ts'

describe('HEALTHCHECK', () => {
  it('converts Go durations to nanoseconds', () => {
    expect(durationNs('30s')).toBe(30e9)
    expect(durationNs('1m30s')).toBe(90e9)
    expect(durationNs('1h')).toBe(3600e9)
    expect(durationNs('1.5s')).toBe(1.5e9)
    expect(durationNs('250ms')).toBe(250e6)
    expect(durationNs('10us')).toBe(10e3)
  })

  it('keeps --interval, --timeout, --start-period, --start-interval and --retries in the config', () => {
    const plan = parseDockerfile('FROM scratch\nHEALTHCHECK --interval=30s --timeout=3s --start-period=1m --start-interval=2s --retries=3 CMD test -f /ok || exit 1\n')
    const config: Config = {}
    for (const step of plan.stages[0]?.steps ?? []) applyConfigStep(config, step)
    expect((config as Record<string, unknown>).Healthcheck).toEqual({
      Test: ['CMD-SHELL', 'test -f /ok || exit 1'], Interval: 30e9, Timeout: 3e9, StartPeriod: 60e9, StartInterval: 2e9, Retries: 3
    })
  })

  it('writes the test alone when no flag is given', () => {
    const plan = parseDockerfile('FROM scratch\nHEALTHCHECK CMD ["/bin/check"]\n')
    const config: Config = {}
    for (const step of plan.stages[0]?.steps ?? []) applyConfigStep(config, step)
    expect((config as Record<string, unknown>).Healthcheck).toEqual({ Test: ['CMD', '/bin/check'] })
  })
})
