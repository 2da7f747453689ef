/**
 * Real clients through `kiln gateway` (docs/gateway.md): Debian's podman
 * pulls an image the gateway serves on loopback, directly and through the
 * registries.conf mirror of the docs; containerd's `ctr` pulls
 * docker.io/library/NAME through mirror mode with the docs' hosts.toml, the
 * gateway answering from its own store (the image imported under
 * docker.io/library/NAME). Each client's digest must be kiln's.
 *
 * The gateway runs as the unprivileged user (uid 65534 when the tests run
 * as root); the clients run as root, as CI does: podman with its storage
 * (--root, --runroot, --tmpdir) in a temp dir, and a private containerd
 * with its own root, state, socket and config there, stopped at the end.
 * Nothing is left: the temp dir goes, and no mount remains under it.
 */
import { execFile, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeBusyboxBase } from '../../helpers/busybox-base.ts'
import { kilnProcs } from '../../helpers/kiln-procs.ts'
import type { KilnProcs, Proc } from '../../helpers/kiln-procs.ts'
import { haveTools } from '../../helpers/tools.ts'
import { isRoot, makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'

const run = promisify(execFile)
const DOCS = join(import.meta.dirname, '../../../docs/gateway.md')

/** The fenced block of docs/gateway.md that follows `heading` (a line naming the file). */
function docsBlock (heading: string, lang: string): string {
  const text = readFileSync(DOCS, 'utf8')
  const at = text.indexOf(heading)
  if (at < 0) throw new Error(`docs/gateway.md no longer has ${JSON.stringify(heading)}`)
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(text.slice(at))
  if (m === null) throw new Error(`no \`\`\`${lang} block after ${JSON.stringify(heading)} in docs/gateway.md`)
  return m[1] as string
}

const mountsUnder = (dir: string): string[] => readFileSync('/proc/mounts', 'utf8').split('\n').filter(l => l.split(' ')[1]?.startsWith(dir) === true)

const canRun = haveTools('podman', 'containerd', 'ctr', 'setpriv', 'umoci', 'busybox')
if (canRun && !isRoot()) {
  if (process.env.CI === 'true') throw new Error('CI=true but not root: podman and containerd clients need root here')
  console.warn('skipping: podman and containerd clients need root')
}

describe.skipIf(!canRun || !isRoot())('podman and containerd pull through kiln gateway', () => {
  let u: Unprivileged
  let k: KilnProcs
  let gw: Proc
  let host: string
  let digest: string
  let dir: string
  let containerd: ChildProcess | undefined
  let containerdExited: Promise<void> | undefined
  const sock = (): string => join(dir, 'containerd', 'containerd.sock')

  const podman = async (...args: string[]): Promise<string> => (await run('podman', [
    '--root', join(dir, 'podman', 'root'), '--runroot', join(dir, 'podman', 'run'), '--tmpdir', join(dir, 'podman', 'tmp'),
    '--storage-driver', 'vfs', '--events-backend', 'none', '--cgroup-manager', 'cgroupfs', ...args
  ], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, XDG_CONFIG_HOME: join(dir, 'config'), CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf') }, timeout: 120_000 })).stdout
  const ctr = async (...args: string[]): Promise<string> => (await run('ctr', ['--address', sock(), ...args], { timeout: 120_000 })).stdout

  const stopContainerd = async (): Promise<void> => {
    if (containerd === undefined || containerd.exitCode !== null || containerd.signalCode !== null) return
    const kill = setTimeout(() => { containerd?.kill('SIGKILL') }, 15_000)
    containerd.kill('SIGTERM')
    await containerdExited
    clearTimeout(kill)
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiln-clients-'))
    u = makeUnprivileged()
    k = kilnProcs(u)
    const layout = makeBusyboxBase(u)
    for (const name of ['e2e/busybox:1', 'docker.io/library/kilnbox:1']) {
      const r = u.kiln(['image', 'import', `oci:${layout}:base`, '-t', name])
      expect(r.status, r.stderr).toBe(0)
    }
    digest = (JSON.parse(u.kiln(['image', 'inspect', 'e2e/busybox:1', '--json']).stdout) as { digest: string }).digest
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/)
    gw = k.start(['gateway', '--listen', '127.0.0.1:0', '--json'], u.dataDir)
    host = new URL((await gw.waitFor(/"url":\s*"(http:\/\/127\.0\.0\.1:\d+)"/))[1] as string).host
    // The registries.conf of docs/gateway.md, pointed at this gateway.
    writeFileSync(join(dir, 'registries.conf'), docsBlock('podman / CRI-O / buildah, `/etc/containers/registries.conf`', 'toml').replaceAll('127.0.0.1:5000', host))
  }, 300_000)

  afterAll(async () => {
    await stopContainerd()
    await k?.stopAll()
    u?.cleanup()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  }, 60_000)

  it('podman pulls from the gateway directly: podman image inspect gives kiln\'s digest', async () => {
    await podman('pull', '--tls-verify=false', `docker://${host}/e2e/busybox:1`)
    expect((await podman('image', 'inspect', '--format', '{{.Digest}}', `${host}/e2e/busybox:1`)).trim()).toBe(digest)
  }, 180_000)

  it('podman pulls docker.io/library/NAME through the registries.conf mirror of docs/gateway.md', async () => {
    await podman('pull', 'docker.io/library/kilnbox:1')
    expect((await podman('image', 'inspect', '--format', '{{.Digest}}', 'docker.io/library/kilnbox:1')).trim()).toBe(digest)
  }, 180_000)

  it('ctr pulls docker.io/library/NAME through mirror mode with the hosts.toml of docs/gateway.md', async () => {
    const root = join(dir, 'containerd')
    mkdirSync(join(root, 'certs.d', 'docker.io'), { recursive: true })
    writeFileSync(join(root, 'certs.d', 'docker.io', 'hosts.toml'), docsBlock('containerd, `/etc/containerd/certs.d/docker.io/hosts.toml`', 'toml').replaceAll('127.0.0.1:5000', host))
    writeFileSync(join(root, 'config.toml'), [
      'version = 2',
      `root = "${join(root, 'root')}"`,
      `state = "${join(root, 'state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${sock()}"`,
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = "${join(root, 'opt')}"`
    ].join('\n') + '\n')
    let log = ''
    containerd = spawn('containerd', ['--config', join(root, 'config.toml')], { stdio: ['ignore', 'pipe', 'pipe'] })
    containerd.stdout?.on('data', (d: Buffer) => { log += d.toString() })
    containerd.stderr?.on('data', (d: Buffer) => { log += d.toString() })
    containerdExited = new Promise(resolve => containerd?.once('exit', () => { resolve() }))
    // Ready when it answers on its socket (its log says "serving..." too, but the socket is what ctr needs).
    await new Promise<void>((resolve, reject) => {
      const deadline = Date.now() + 60_000
      const attempt = (): void => {
        if (containerd?.exitCode !== null) { reject(new Error(`containerd exited: ${log}`)); return }
        run('ctr', ['--address', sock(), 'version'], { timeout: 10_000 }).then(() => { resolve() }, () => {
          if (Date.now() > deadline) reject(new Error(`containerd did not answer within 60 s: ${log}`))
          else setTimeout(attempt, 200)
        })
      }
      attempt()
    })
    await ctr('images', 'pull', '--snapshotter', 'native', '--hosts-dir', join(root, 'certs.d'), 'docker.io/library/kilnbox:1')
    const listed = await ctr('images', 'ls')
    const line = listed.split('\n').find(l => l.startsWith('docker.io/library/kilnbox:1 '))
    expect(line, listed).toBeDefined()
    expect(line?.split(/\s+/)[2]).toBe(digest)
    await stopContainerd()
    expect(mountsUnder(dir)).toEqual([])
  }, 180_000)
})
