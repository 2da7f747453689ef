/**
 * Independent stages run at once (src/builder/stage-schedule.ts), as
 * uid 65534 with the default sandbox: stages a and b each wait, through a
 * shared RUN cache mount, for the other to have started. With `--jobs 2`
 * both meet and the final stage copies from both; with `--jobs 1` they run
 * one after another, so a waits in vain and the build fails. While both
 * run, their output lines say whose they are (`[n] ...`).
 */
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeBusyboxBase } from '../../helpers/busybox-base.ts'
import { haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { makeContext } from '../../helpers/context.ts'

/** A stage that marks itself started, then waits up to 6 s for `other` to have started too. */
const waiter = (self: string, other: string, id: string): string => [
  `FROM oci:LAYOUT:base AS ${self}`,
  `RUN --mount=type=cache,target=/par,id=${id},sharing=shared touch /par/${self} && echo "${self} waits for ${other}" && ` +
    `i=0; while [ ! -e /par/${other} ] && [ $i -lt 60 ]; do sleep 0.1; i=$((i+1)); done; ` +
    `test -e /par/${other} && echo "${self} met ${other}" > /met-${self}`
].join('\n')

describe.skipIf(!haveTools('setpriv', 'umoci', 'busybox'))('stages that do not read from each other', () => {
  let u: Unprivileged
  let layout: string
  const context = (dockerfile: string): string => makeContext(u, { Dockerfile: dockerfile }, { LAYOUT: layout })
  const recipe = (): string => {
    const id = `barrier-${randomBytes(6).toString('hex')}`
    return [waiter('a', 'b', id), waiter('b', 'a', id), 'FROM a', 'COPY --from=b /met-b /met-b', 'RUN cat /met-a /met-b', ''].join('\n')
  }

  beforeAll(() => {
    u = makeUnprivileged()
    layout = makeBusyboxBase(u)
  }, 120_000)
  afterAll(() => { u?.cleanup() })

  it('run at once with --jobs 2: each sees the other started, and the final stage has both', { timeout: 180_000 }, () => {
    const r = u.kiln(['build', '--jobs', '2', '--no-cache', context(recipe())])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/^a met b$/m)
    expect(r.stderr).toMatch(/^b met a$/m)
    // Both RUN steps were running when they printed: their lines carry their step numbers.
    expect(r.stderr).toMatch(/^\[\d+\] a waits for b$/m)
    expect(r.stderr).toMatch(/^\[\d+\] b waits for a$/m)
  })

  it('run one after another with --jobs 1: the first waits in vain and the build fails', { timeout: 180_000 }, () => {
    const r = u.kiln(['build', '--jobs', '1', '--no-cache', context(recipe())])
    expect(r.status).toBe(5)
    expect(r.stderr).toMatch(/^a waits for b$/m)
    expect(r.stderr).not.toMatch(/b waits for a/)
  })

  it('refuses --jobs 0 with a usage error', () => {
    const r = u.kiln(['build', '--jobs', '0', context(recipe())])
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/--jobs 0: expected an integer from 1 to 64/)
  })
})
