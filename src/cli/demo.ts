/**
 * `kiln demo`: the tour behind `npm run demo`. Each step runs the real
 * `kiln` command in a child process, printed first as a person would type
 * it, against a throw-away data dir.
 */
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CliError } from './errors.ts'
import { EXIT } from './exit-codes.ts'
import type { Output } from './output.ts'
import { scratchPrefix } from '../util/owner.ts'

const KILN = join(import.meta.dirname, 'kiln.mjs')

export interface DemoOptions {
  keep: boolean
  port?: number
  out: Output
}

function which (cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v "$0"', cmd], { encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim() : undefined
}

/** Whether a file is a statically linked executable (it must run inside an image with no libc). */
function isStatic (path: string): boolean {
  const head = readFileSync(path).subarray(0, 4096)
  // A dynamic ELF names its interpreter (PT_INTERP): "/lib64/ld-linux..." or "/lib/ld-".
  return head.subarray(0, 4).toString('latin1') === '\x7fELF' && !head.toString('latin1').includes('/ld-')
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => { resolve(typeof addr === 'object' && addr !== null ? addr.port : 0) })
    })
  })
}

export async function runDemo (options: DemoOptions): Promise<void> {
  const { out } = options
  const work = mkdtempSync(join(tmpdir(), scratchPrefix('kiln-demo-')))
  const dataDir = join(work, 'data')
  const env = { ...process.env, KILN_DATA_DIR: dataDir, KILN_LOG_LEVEL: 'warn' }
  let step = 0
  const say = (text: string): void => { out.line(''); out.line(`== ${++step}. ${text}`) }
  const kiln = (args: string[], show = args): void => {
    out.line(`$ kiln ${show.join(' ')}`)
    const r = spawnSync(process.execPath, [KILN, ...args], { env, stdio: 'inherit' })
    if (r.status !== 0) throw new CliError(`demo step failed: kiln ${show.join(' ')} exited with ${r.status ?? r.signal}`, { exitCode: EXIT.failure })
  }
  const shell = (cmd: string, args: string[]): string => {
    out.line(`$ ${cmd} ${args.join(' ')}`)
    const r = spawnSync(cmd, args, { env, encoding: 'utf8' })
    if (r.status !== 0) throw new CliError(`demo step failed: ${cmd} exited with ${r.status ?? r.signal}: ${r.stderr}`, { exitCode: EXIT.failure })
    if (r.stdout !== '') out.line(r.stdout.trimEnd())
    return r.stdout
  }

  let gateway: ReturnType<typeof spawn> | undefined
  try {
    out.line(`kiln demo: everything happens in ${work} (KILN_DATA_DIR=${dataDir})`)
    say('Start kiln: an agent, a gateway (OCI distribution API) and a local builder in one process')
    const port = options.port ?? await freePort()
    out.line(`$ kiln up --gateway-listen 127.0.0.1:${port} --listen /ip4/127.0.0.1/tcp/0 --no-mdns --json &`)
    gateway = spawn(process.execPath, [KILN, 'up', '--gateway-listen', `127.0.0.1:${port}`, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--json'], { env, stdio: ['ignore', 'pipe', 'inherit'] })
    const child = gateway
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new CliError('kiln up did not start within 60 s', { exitCode: EXIT.network })) }, 60_000)
      child.stdout?.on('data', (d: Buffer) => { if (d.toString().includes('url')) { out.line(d.toString().trimEnd()); clearTimeout(timer); resolve() } })
      child.once('exit', code => { clearTimeout(timer); reject(new CliError(`kiln up exited with ${code}`, { exitCode: EXIT.failure })) })
    })

    const busybox = which('busybox')
    const haveBusybox = busybox !== undefined && isStatic(busybox)

    const ctx = join(work, 'hello')
    mkdirSync(ctx, { recursive: true })
    writeFileSync(join(ctx, 'message.txt'), 'Hello from an image built by kiln, without root.\n')

    if (haveBusybox) {
      say('Make a base image from Debian\'s busybox-static: FROM scratch + COPY, no RUN, no root')
      const baseCtx = join(work, 'busybox-base')
      const root = join(baseCtx, 'rootfs')
      for (const d of ['bin', 'etc', 'tmp', 'root', 'usr/bin']) mkdirSync(join(root, d), { recursive: true })
      chmodSync(join(root, 'tmp'), 0o1777)
      copyFileSync(busybox, join(root, 'bin', 'busybox'))
      chmodSync(join(root, 'bin', 'busybox'), 0o755)
      const applets = spawnSync(busybox, ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter(a => a !== '' && a !== 'busybox')
      for (const a of applets) symlinkSync('busybox', join(root, 'bin', a))
      writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n')
      writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\n')
      writeFileSync(join(baseCtx, 'Dockerfile'), 'FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/bin:/usr/bin:/bin\nCMD ["/bin/sh"]\n')
      out.line(readFileSync(join(baseCtx, 'Dockerfile'), 'utf8').trimEnd().split('\n').map(l => `    ${l}`).join('\n'))
      kiln(['build', '-t', 'demo/busybox:base', baseCtx], ['build', '-t', 'demo/busybox:base', 'busybox-base/'])
      writeFileSync(join(ctx, 'Dockerfile'), [
        'FROM demo/busybox:base',
        'COPY message.txt /srv/message.txt',
        'RUN echo "built as uid $(id -u) in a user namespace on $(uname -m)" >> /srv/message.txt && wc -l /srv/message.txt',
        'LABEL org.opencontainers.image.description="kiln demo"',
        'CMD ["cat", "/srv/message.txt"]',
        ''
      ].join('\n'))
    } else {
      out.warn('busybox-static is not installed (apt-get install busybox-static): the demo image has no shell, so no RUN step')
      writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY message.txt /srv/message.txt\nLABEL org.opencontainers.image.description="kiln demo"\n')
    }

    say('Build the sample recipe rootlessly')
    out.line(readFileSync(join(ctx, 'Dockerfile'), 'utf8').trimEnd().split('\n').map(l => `    ${l}`).join('\n'))
    kiln(['build', '-t', 'demo/hello:1', ctx], ['build', '-t', 'demo/hello:1', 'hello/'])

    say('Build it again: every step comes from the step cache, same digest')
    kiln(['build', '-t', 'demo/hello:1', ctx], ['build', '-t', 'demo/hello:1', 'hello/'])
    kiln(['image', 'ls'])

    say('Pull the image through the gateway')
    const layout = join(work, 'pulled')
    if (which('skopeo') !== undefined) {
      shell('skopeo', ['inspect', '--tls-verify=false', `docker://127.0.0.1:${port}/demo/hello:1`])
      shell('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://127.0.0.1:${port}/demo/hello:1`, `oci:${layout}:1`])
      out.line(`pulled into oci:${layout}:1`)
    } else {
      out.line('(skopeo is not installed: apt-get install skopeo; fetching the manifest with HTTP instead)')
      out.line(`$ curl -H 'Accept: application/vnd.oci.image.manifest.v1+json' http://127.0.0.1:${port}/v2/demo/hello/manifests/1`)
      const res = await fetch(`http://127.0.0.1:${port}/v2/demo/hello/manifests/1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
      out.line(`${res.status} Docker-Content-Digest: ${res.headers.get('docker-content-digest') ?? ''}`)
      out.line(await res.text())
    }

    say('Look inside: unpack the image as a directory tree and read what the recipe wrote')
    const rootfs = join(work, 'rootfs')
    kiln(['image', 'unpack', 'demo/hello:1', rootfs], ['image', 'unpack', 'demo/hello:1', 'rootfs/'])
    out.line('$ cat rootfs/srv/message.txt')
    out.line(readFileSync(join(rootfs, 'srv', 'message.txt'), 'utf8').trimEnd())

    out.line('')
    out.line('Next: docs/quickstart.md — run `kiln agent` on your nodes and `kiln submit` from anywhere.')
  } finally {
    if (gateway !== undefined && gateway.exitCode === null) {
      const g = gateway
      const exited = new Promise(resolve => g.once('exit', resolve))
      g.kill('SIGTERM')
      await exited
    }
    if (options.keep) out.line(`kept ${work}`)
    else rmSync(work, { recursive: true, force: true })
  }
}
