import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runKiln } from '../../helpers/cli.ts'

let dir: string
let siteA: string
let siteB: string
let builder: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-trust-cli-'))
  siteA = join(dir, 'a')
  siteB = join(dir, 'b')
  builder = join(dir, 'builder')
})
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

const kiln = async (dataDir: string, ...args: string[]): ReturnType<typeof runKiln> => await runKiln(['--data-dir', dataDir, 'trust', ...args])

describe('kiln trust', () => {
  it('federates a builder of site A into site B in four commands', async () => {
    const init = await kiln(siteA, 'init-root', '--institution', 'uni-a', '--json')
    expect(init.code).toBe(0)
    const root = JSON.parse(init.stdout) as { key: string, publicPath: string }

    const builderId = (JSON.parse((await runKiln(['--data-dir', builder, 'key', 'show', '--json'])).stdout) as { peerId: string }).peerId
    const certFile = join(dir, 'builder.cert.json')
    const issue = await kiln(siteA, 'issue', '--role', 'builder', '--expires', '30d', '-o', certFile, builderId)
    expect(issue.code).toBe(0)
    // Success is reported as what happened, not as a warning.
    expect(issue.stderr).toMatch(/^certificate for \S+ \(builder, uni-a\) written to /m)
    expect(issue.stderr).not.toMatch(/warning/)
    expect(JSON.parse(await readFile(certFile, 'utf8'))).toMatchObject({ type: 'cert', signer: root.key, payload: { subject: builderId, roles: ['builder'] } })

    expect((await kiln(builder, 'add-cert', certFile)).code).toBe(0)
    // The certificate is about the builder, so another node refuses to store it.
    const wrong = await kiln(siteB, 'add-cert', certFile)
    expect(wrong.code).toBe(4)
    expect(wrong.stderr).toMatch(/certificate is for/)

    expect((await kiln(siteB, 'add-root', root.publicPath, '--roles', 'builder')).code).toBe(0)
    const ls = JSON.parse((await kiln(siteB, 'ls', '--json')).stdout) as { roots: Array<{ key: string, institution: string, roles: string[] }> }
    expect(ls.roots).toEqual([{ key: root.key, institution: 'uni-a', roles: ['builder'] }])
    const mine = JSON.parse((await kiln(builder, 'ls', '--json')).stdout) as { certificates: Array<{ root: string, roles: string[] }> }
    expect(mine.certificates).toEqual([expect.objectContaining({ root: root.key, roles: ['builder'] })])
  })

  it('refuses a second root, an unknown role and issuing without a root, with meaningful exit codes', async () => {
    const again = await kiln(siteA, 'init-root', '--institution', 'uni-a')
    expect(again.code).toBe(2)
    expect(again.stderr).toMatch(/already exists/)
    expect((await kiln(siteA, 'issue', '--role', 'wizard', 'self')).code).toBe(2)
    const noRoot = await kiln(siteB, 'issue', '--role', 'builder', 'self')
    expect(noRoot.code).toBe(2)
    expect(noRoot.stderr).toMatch(/init-root/)
  })

  it('takes --roles and --role on every command that names roles', async () => {
    const issued = await kiln(siteA, 'issue', '--roles', 'builder,requester', '--expires', '1d', 'self')
    expect(issued.code).toBe(0)
    expect(JSON.parse(issued.stdout)).toMatchObject({ payload: { roles: ['builder', 'requester'] } })
    const site = join(dir, 'spellings')
    const peer = '12D3KooWLp1n6cQhYHdmtCgmEKNNoESgGJPEUSvwPnP6q1tZVYgh'
    expect((await kiln(site, 'add-peer', peer, '--role', 'requester')).code).toBe(0)
    const ls = JSON.parse((await kiln(site, 'ls', '--json')).stdout) as { peers: Array<{ peer: string, roles: string[] }> }
    expect(ls.peers).toEqual([expect.objectContaining({ peer, roles: ['requester'] })])
    const none = await kiln(siteA, 'issue', 'self')
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/no role given/)
  })
})
