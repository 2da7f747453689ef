import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runKiln } from '../../helpers/cli.ts'

describe('kiln doctor', () => {
  let dir: string
  let closedPort: number
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-doctor-cli-'))
    const s = createServer()
    await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
    closedPort = (s.address() as AddressInfo).port
    await new Promise<void>(resolve => s.close(() => { resolve() }))
  })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('reports the sandbox probe and every check, and exits 1 on a problem (an unreachable bootstrap peer)', async () => {
    const config = join(dir, 'kiln.yaml')
    await writeFile(config, `node:\n  bootstrap: [/ip4/127.0.0.1/tcp/${closedPort}]\n`)
    const env = { KILN_DATA_DIR: join(dir, 'data') }
    const json = await runKiln(['doctor', '--json', '--config', config], { env })
    expect(json.code).toBe(1)
    expect(json.stderr).toMatch(/problem\(s\) found/)
    const report = JSON.parse(json.stdout) as { drivers: unknown[], selected?: string, problems: number, checks: Array<{ id: string, status: string, detail: string }> }
    expect(report.drivers.length).toBe(3)
    expect(report.problems).toBeGreaterThanOrEqual(1)
    expect(report.checks.find(c => c.id === 'network.bootstrap')).toMatchObject({ status: 'problem', detail: expect.stringMatching(/unreachable/) })

    const text = await runKiln(['doctor', '--config', config], { env })
    expect(text.code).toBe(1)
    expect(text.stdout).toMatch(/ {2}user namespaces: /)
    expect(text.stdout).toMatch(/^problem {2}bootstrap peers: unreachable/m)
    expect(text.stdout).toMatch(/^ {9}fix: /m)
  })
})
