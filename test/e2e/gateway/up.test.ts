/**
 * `kiln up` as a process: agent + gateway + local builder on one data dir.
 * A build POSTed to the gateway's build extension (a context tar with a
 * Dockerfile, no RUN step so no sandbox is needed) is built by the local
 * builder, tagged, and pulled back with skopeo; `kiln tag` names it again;
 * SIGTERM stops everything with exit 0.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runKiln } from '../../helpers/cli.ts'
import { haveTools } from '../../helpers/tools.ts'
import { tarOf } from './fixtures.ts'
import { startKiln } from './process.ts'
import type { KilnProcess } from './process.ts'

const run = promisify(execFile)
interface Ready { url: string, peerId: string, multiaddrs: string[], dataDir: string }

describe.skipIf(!haveTools('skopeo'))('kiln up', () => {
  let dir: string
  let env: NodeJS.ProcessEnv
  let up: KilnProcess<Ready>

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-up-'))
    env = { HOME: dir, XDG_RUNTIME_DIR: dir, REGISTRY_AUTH_FILE: join(dir, 'auth.json') }
    up = await startKiln<Ready>(['--data-dir', join(dir, 'data'), '--log-level', 'warn', 'up', '--gateway-listen', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--anonymous-push', '--json'], { env })
  }, 120_000)

  afterAll(async () => {
    await up?.stop('SIGKILL')
    await rm(dir, { recursive: true, force: true })
  })

  it('builds a POSTed context with the local builder and serves the result', async () => {
    expect(up.ready.peerId).toMatch(/^12D3KooW/)
    const context = Buffer.concat([
      tarOf('Dockerfile', Buffer.from('FROM scratch\nCOPY hello.txt /hello.txt\nCMD ["/hello.txt"]\n')).subarray(0, -1024),
      tarOf('hello.txt', Buffer.from('hello from kiln up\n'))
    ])
    const res = await fetch(`${up.ready.url}/v2/demo/hello/_kiln/builds?platform=linux/amd64&tag=1`, { method: 'POST', headers: { 'content-type': 'application/x-tar' }, body: context })
    expect(res.status, await res.clone().text()).toBe(202)
    const location = res.headers.get('location') as string
    await res.arrayBuffer()
    // Follow the live log to the end (bounded), then read the status.
    const logs = await fetch(`${up.ready.url}${location}/logs`, { signal: AbortSignal.timeout(120_000) })
    const text = await logs.text()
    const status = await (await fetch(`${up.ready.url}${location}`)).json() as { status: string, result?: { digest: string, tag: string }, error?: unknown }
    expect(status.status, `${text}\n${JSON.stringify(status.error)}`).toBe('succeeded')
    expect(text).toContain('COPY hello.txt /hello.txt')
    const host = up.ready.url.replace(/^http:\/\//, '')
    const inspect = JSON.parse((await run('skopeo', ['inspect', '--tls-verify=false', `docker://${host}/demo/hello:1`], { env, timeout: 60_000 })).stdout) as { Digest: string }
    expect(inspect.Digest).toBe(status.result?.digest)
    await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${host}/demo/hello:1`, `oci:${join(dir, 'out')}:1`], { env, timeout: 60_000 })
    const index = JSON.parse(await readFile(join(dir, 'out', 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
    expect(index.manifests[0]?.digest).toBe(status.result?.digest)
  }, 180_000)

  it('stops cleanly on SIGTERM, and kiln tag names the built image', async () => {
    expect(await up.stop('SIGTERM')).toBe(0)
    const tagged = await runKiln(['--data-dir', join(dir, 'data'), 'tag', 'demo/hello:1', 'demo/hello:stable', '--json'], { env })
    expect(tagged.code, tagged.stderr).toBe(0)
    const out = JSON.parse(tagged.stdout) as { repository: string, tag: string, digest: string }
    expect(out).toMatchObject({ repository: 'demo/hello', tag: 'stable' })
    const missing = await runKiln(['--data-dir', join(dir, 'data'), 'tag', 'demo/none:1', 'x:y'], { env })
    expect(missing.code).toBe(3)
  }, 120_000)
})
