/**
 * Two `kiln gateway` processes attached to each other over libp2p on
 * loopback: a multi-arch image pushed with skopeo to one is pulled with
 * skopeo from the other, its tag resolved through the signed tag record the
 * first published, its blobs pulled through the network. The second trusts
 * the first as a gateway; a third, trusting nobody, does not resolve the tag.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runKiln } from '../../helpers/cli.ts'
import { haveTools } from '../../helpers/tools.ts'
import { writeMultiArchLayout } from './fixtures.ts'
import type { LayoutImage } from './fixtures.ts'
import { startKiln } from './process.ts'
import type { KilnProcess } from './process.ts'

const run = promisify(execFile)
interface Ready { url: string, peerId: string, multiaddrs: string[] }

describe.skipIf(!haveTools('skopeo'))('gateways pulling through the peer network', () => {
  let dir: string
  let env: NodeJS.ProcessEnv
  let image: LayoutImage
  const procs: Array<KilnProcess<Ready>> = []
  let a: KilnProcess<Ready>
  let b: KilnProcess<Ready>

  const skopeo = async (...args: string[]): Promise<string> => (await run('skopeo', args, { env, timeout: 60_000 })).stdout
  const host = (p: KilnProcess<Ready>): string => p.ready.url.replace(/^http:\/\//, '')
  const gateway = async (name: string, extra: string[]): Promise<KilnProcess<Ready>> => {
    const p = await startKiln<Ready>(['--data-dir', join(dir, name), '--log-level', 'warn', 'gateway', '--listen', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0', '--anonymous-push', '--json', ...extra], { env })
    procs.push(p)
    return p
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-gw-net-'))
    env = { HOME: dir, XDG_RUNTIME_DIR: dir, REGISTRY_AUTH_FILE: join(dir, 'auth.json') }
    image = await writeMultiArchLayout(join(dir, 'layout'), 'v1', [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }])
    const idA = JSON.parse((await runKiln(['--data-dir', join(dir, 'a'), 'key', 'show', '--json'], { env })).stdout) as { peerId: string }
    const trusted = await runKiln(['--data-dir', join(dir, 'b'), 'trust', 'add-peer', idA.peerId, '--roles', 'gateway'], { env })
    expect(trusted.code, trusted.stderr).toBe(0)
    a = await gateway('a', [])
    b = await gateway('b', ['--bootstrap', a.ready.multiaddrs[0] as string])
  }, 120_000)

  afterAll(async () => {
    for (const p of procs) await p.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('serves on B, by tag and by digest, the multi-arch image pushed to A', async () => {
    await skopeo('copy', '--all', '--dest-tls-verify=false', `oci:${join(dir, 'layout')}:v1`, `docker://${host(a)}/hpc/multi:v1`)
    expect(JSON.parse(await skopeo('list-tags', '--tls-verify=false', `docker://${host(a)}/hpc/multi`))).toMatchObject({ Tags: ['v1'] })

    // The tag record is published in the background after the push: poll B, bounded.
    const deadline = Date.now() + 60_000
    let raw: string | undefined
    while (raw === undefined) {
      try {
        raw = await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${host(b)}/hpc/multi:v1`)
      } catch (err) {
        if (Date.now() > deadline) throw err
        await new Promise(resolve => setTimeout(resolve, 1000))
      }
    }
    expect((JSON.parse(raw) as { manifests: Array<{ digest: string }> }).manifests.map(m => m.digest)).toEqual(image.manifests)

    await skopeo('copy', '--all', '--src-tls-verify=false', `docker://${host(b)}/hpc/multi:v1`, `oci:${join(dir, 'from-b')}:v1`)
    const index = JSON.parse(await readFile(join(dir, 'from-b', 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
    expect(index.manifests[0]?.digest).toBe(image.index)
    for (const d of image.blobs) await readFile(join(dir, 'from-b', 'blobs', 'sha256', d.slice(7)))

    await skopeo('copy', '--src-tls-verify=false', `docker://${host(b)}/hpc/multi@${image.manifests[1] as string}`, `oci:${join(dir, 'by-digest')}:arm`)
    const arm = JSON.parse(await readFile(join(dir, 'by-digest', 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
    expect(arm.manifests[0]?.digest).toBe(image.manifests[1])
  }, 180_000)

  it('does not resolve the tag on a gateway whose trust policy does not name A', async () => {
    const c = await gateway('c', ['--bootstrap', a.ready.multiaddrs[0] as string])
    await expect(skopeo('inspect', '--raw', '--tls-verify=false', `docker://${host(c)}/hpc/multi:v1`)).rejects.toThrow(/manifest unknown/i)
    // Content by digest is not a matter of trust (the digest verifies it): that still comes through.
    const raw = await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${host(c)}/hpc/multi@${image.index}`)
    expect(JSON.parse(raw)).toMatchObject({ mediaType: 'application/vnd.oci.image.index.v1+json' })
    expect(await c.stop()).toBe(0)
  }, 120_000)
})
