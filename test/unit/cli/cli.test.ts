import { describe, it, expect, afterAll } from 'vitest'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runKiln } from '../../helpers/cli.ts'

const dataDir = mkdtempSync(join(tmpdir(), 'kiln-cli-'))
afterAll(() => { rmSync(dataDir, { recursive: true, force: true }) })

describe('kiln CLI', () => {
  it('--help lists the commands and examples', async () => {
    const r = await runKiln(['--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/Usage: kiln/)
    expect(r.stdout).toMatch(/key/)
    expect(r.stdout).toMatch(/Examples:/)
  })

  it('--version prints the version of package.json and the Node that runs kiln', async () => {
    const r = await runKiln(['--version'])
    expect(r.code).toBe(0)
    const { version } = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string }
    expect(r.stdout.trim()).toBe(`kiln ${version} (Node ${process.versions.node})`)
  })

  it('an unknown command exits 2 with a pointer to --help', async () => {
    const r = await runKiln(['frobnicate'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/unknown command 'frobnicate'/)
  })

  it('key show creates a 0600 key once and shows the same peer id after', async () => {
    const first = await runKiln(['--data-dir', dataDir, 'key', 'show', '--json'])
    expect(first.code).toBe(0)
    const a = JSON.parse(first.stdout) as { peerId: string, created: boolean, path: string }
    expect(a.peerId).toMatch(/^12D3KooW/)
    expect(a.created).toBe(true)
    expect(statSync(a.path).mode & 0o777).toBe(0o600)
    const b = JSON.parse((await runKiln(['key', 'show', '--json'], { env: { KILN_DATA_DIR: dataDir } })).stdout) as { peerId: string, created: boolean }
    expect(b).toMatchObject({ peerId: a.peerId, created: false })
  })

  it('a bad config file exits 2 and names the key', async () => {
    const cfg = join(dataDir, 'bad.yaml')
    writeFileSync(cfg, 'node:\n  mdns: perhaps\n')
    const r = await runKiln(['--config', cfg, 'key', 'show'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/node\.mdns: expected a boolean, got "perhaps"/)
  })
  it('a capability with a value is refused before any search, with the name to search for', async () => {
    const r = await runKiln(['--data-dir', dataDir, 'peers', '--capability', 'gpu=nvidia', '--no-mdns'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--capability: expected a capability name like gpu, cuda or mpi \(.*\), got "gpu=nvidia"/)
    expect(r.stderr).toMatch(/try --capability gpu\b/)
    expect(r.stderr).not.toMatch(/Invalid input|no peer reachable/)
  })

  it('a malformed --listen multiaddr is a usage error that names it, not a port in use', async () => {
    for (const args of [['agent', '--no-jobs', '--no-mdns', '--listen', 'garbage'], ['peers', '--no-mdns', '--listen', '/ip4/0.0.0.0/tcp/0,/ip4/nowhere/tcp/1']]) {
      const r = await runKiln(['--data-dir', dataDir, ...args])
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/--listen: "(garbage|\/ip4\/nowhere\/tcp\/1)" is not a multiaddr/)
      expect(r.stderr).not.toMatch(/port/)
    }
  })
  it('a malformed --relay-via multiaddr is a usage error that names the flag, with an example', async () => {
    const r = await runKiln(['--data-dir', dataDir, 'agent', '--no-jobs', '--no-mdns', '--listen', '', '--relay-via', 'login1:4001'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--relay-via: "login1:4001" is not a multiaddr/)
    expect(r.stderr).toMatch(/for example --relay-via \/ip4\//)
    const noPeer = await runKiln(['--data-dir', dataDir, 'agent', '--no-jobs', '--no-mdns', '--listen', '', '--relay-via', '/ip4/10.1.0.5/tcp/4001'])
    expect(noPeer.code).toBe(2)
    expect(noPeer.stderr).toMatch(/--relay-via: "\/ip4\/10\.1\.0\.5\/tcp\/4001" names no relay peer: it must end in \/p2p\/<peer id>/)
  })
  it('a peer search says what it is doing while it waits, then why it failed', async () => {
    const r = await runKiln(['--data-dir', dataDir, 'peers', '--no-mdns', '--timeout', '2'])
    expect(r.code).toBe(6)
    expect(r.stderr).toMatch(/^looking for peers \(no mDNS and no bootstrap list: only peers that dial in\)\.\.\.\nkiln: error: no peer reachable/m)
  })

  it('build -t refuses a name the distribution spec refuses before building, and shows a valid one', async () => {
    const ctx = join(dataDir, 'ctx-bad-name')
    mkdirSync(ctx)
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY Dockerfile /\n')
    for (const [name, near] of [['Bad/Name:1', 'bad/name:1'], ['ok/name:bad tag!', 'ok/name:bad_tag_'], ['a//b', 'a/b:latest']] as const) {
      const r = await runKiln(['--data-dir', dataDir, 'build', '-t', name, ctx])
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr).toMatch(/invalid image reference/)
      expect(r.stderr).toContain(`for example ${near}`)
    }
    expect(JSON.parse((await runKiln(['--data-dir', dataDir, 'image', 'ls', '--json'])).stdout)).toEqual([])
  })
})
