/**
 * `kiln demo`: the tour behind `npm run demo`, a build farm on this
 * machine. Terms: a *node* is one kiln process with its own data dir under
 * the demo's work dir: three agents (alpha, which also runs the gateway,
 * beta, and gamma, whose kiln.yaml gives it the capability `gpu=demo`), the
 * *laptop* that submits the job and the *desk* that pulls the result. All
 * listen on loopback only, find each other through alpha (no mDNS), and
 * trust each other (an open trust policy: a closed demo network). Every
 * step runs the real `kiln` command in a child process, printed first as a
 * person would type it from the work dir. Ctrl-C or DEMO_TIME_LIMIT_MS
 * stops every process and removes the work dir (unless `--keep`).
 */
import { z } from 'zod'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CliError } from './errors.ts'
import { EXIT } from './exit-codes.ts'
import type { Output } from './output.ts'
import { createDemoProcs, hasTool } from './demo-procs.ts'
import type { DemoProcs, KilnOptions } from './demo-procs.ts'
import { DEMO_MESSAGE, runImage, staticBusybox, writeBusyboxBase, writeJobContext } from './demo-image.ts'
import { formatPlatform, hostPlatform } from '../oci/index.ts'
import { scratchPrefix } from '../util/owner.ts'
import { SandboxUnavailableError } from '../builder/errors.ts'
import { isErrorOf } from '../util/error-class.ts'

/** The whole demo takes under 2 minutes on an idle 2-core machine; this bounds it on a busy one. */
export const DEMO_TIME_LIMIT_MS = 300_000

export interface DemoOptions {
  keep: boolean
  port?: number
  out: Output
}

const LOOPBACK = '/ip4/127.0.0.1/tcp/0'
const GPU_CONFIG = 'agent:\n  capabilities: ["gpu=demo"]\n'
const IMAGE = { repository: 'demo/hello', tag: '1' }

/** What `kiln up --json` prints once it is up (the part the demo uses). */
const UpReady = z.looseObject({ url: z.string(), peerId: z.string(), multiaddrs: z.array(z.string()) })

interface Agent { name: string, role: string, peerId: string, address: string }

/** A data dir whose trust policy trusts every peer (never outside a closed test network: docs/security.md). */
function openDataDir (dir: string): void {
  mkdirSync(join(dir, 'trust'), { recursive: true, mode: 0o700 })
  writeFileSync(join(dir, 'trust', 'trust.yaml'), 'version: 1\nopen: true\n', { mode: 0o600 })
}

const indent = (text: string): string => text.trimEnd().split('\n').map(l => `    ${l}`).join('\n')
const short = (peerId: string): string => `${peerId.slice(0, 8)}…${peerId.slice(-6)}`

export async function runDemo (options: DemoOptions): Promise<void> {
  const { out } = options
  const work = mkdtempSync(join(tmpdir(), scratchPrefix('kiln-demo-')))
  // Nothing of the caller's kiln settings reaches the demo's nodes.
  const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KILN_'))), KILN_LOG_LEVEL: 'warn' }

  const stop = new AbortController()
  const onSignal = (): void => { stop.abort(new CliError('interrupted: the farm was stopped', { exitCode: EXIT.failure })) }
  // Kept until the farm is stopped: a second Ctrl-C must not end the demo before its cleanup.
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const limit = setTimeout(() => { stop.abort(new CliError(`the demo took longer than ${DEMO_TIME_LIMIT_MS / 1000} s: stopped (is the machine busy?)`, { exitCode: EXIT.failure })) }, DEMO_TIME_LIMIT_MS)
  const procs = createDemoProcs({ out, work, env, signal: stop.signal })
  const { show, dataDir } = procs

  let step = 0
  const say = (text: string): void => { out.line(''); out.line(`== ${++step}. ${text}`) }

  try {
    out.line(`kiln demo: a build farm of three agents on this machine, in ${work}`)
    out.line('Each node is a kiln process with its own data dir (KILN_DATA_DIR) in that directory; commands are shown as you would type them there.')
    for (const node of ['alpha', 'beta', 'gamma', 'laptop', 'desk']) openDataDir(dataDir(node))
    const agents = await startFarm(procs, { work, port: options.port, say, out })

    const busybox = staticBusybox()
    const platform = formatPlatform(hostPlatform())
    if (busybox !== undefined) {
      say('On the laptop (a node that is no agent): make a base image from Debian\'s busybox-static, FROM scratch + COPY, no root')
      writeBusyboxBase(join(work, 'busybox-base'), busybox)
      out.line(indent(readFileSync(join(work, 'busybox-base', 'Dockerfile'), 'utf8')))
      await procs.kiln('laptop', ['build', '-t', 'demo/busybox:base', join(work, 'busybox-base')])
    } else {
      out.warn('busybox-static is not installed (apt-get install busybox-static): the job\'s image is FROM scratch + COPY, with no RUN step and nothing to run')
    }
    writeJobContext(join(work, 'hello'), busybox !== undefined ? 'demo/busybox:base' : undefined)

    say('Submit a job only gamma can take (--require gpu): the agents offer or decline, the laptop awards it and follows the live log')
    out.line(indent(readFileSync(join(work, 'hello', 'Dockerfile'), 'utf8')))
    const alpha = agents[0] as Agent
    const submitted = await procs.kiln('laptop', ['submit', '--platform', platform, '--require', 'gpu', '-t', `${IMAGE.repository}:${IMAGE.tag}`, '--bootstrap', alpha.address, '--listen', LOOPBACK, '--no-mdns', join(work, 'hello')])
    const digest = /succeeded in [\d.]+ s\n\s+\S+\s+(sha256:[0-9a-f]{64})/.exec(submitted)?.[1]
    if (digest === undefined) throw new CliError('demo step failed: kiln submit printed no digest', { exitCode: EXIT.failure })
    const builder = agents.find(a => submitted.includes(`awarded to ${a.peerId}`))
    out.line(`The job was awarded to ${builder?.name ?? 'an unknown agent'}${builder !== undefined ? ` (${builder.role})` : ''}; the laptop fetched and verified the image it built.`)

    say('On the desk (another node): pull the image peer to peer, from whichever peers hold it')
    await procs.kiln('desk', ['pull', `${IMAGE.repository}:${IMAGE.tag}@${digest}`, '--bootstrap', alpha.address, '--listen', LOOPBACK, '--no-mdns'])
    out.line(`digest pulled peer to peer:   ${digest}`)

    say(`Pull it through alpha's gateway (the OCI distribution API on 127.0.0.1:${agents.port}): alpha did not build it, so it fetches it from the peers`)
    const viaGateway = await pullThroughGateway(procs, agents.port, digest, out)
    out.line(`digest pulled peer to peer:   ${digest}`)
    out.line(`digest through the gateway:   ${viaGateway}`)
    if (viaGateway !== digest) throw new CliError('the gateway served another image than the peers', { exitCode: EXIT.verification })
    out.line('The same image both ways: a digest names the bytes, whoever serves them.')

    say('Run it on the desk')
    const rootfs = join(work, 'rootfs')
    const unpack = async (): Promise<void> => { await procs.kiln('desk', ['image', 'unpack', `${IMAGE.repository}:${IMAGE.tag}`, rootfs], { echo: false }) }
    await runResult({ desk: dataDir('desk'), rootfs, unpack, signal: stop.signal, show, out })

    out.line('')
    out.line('Next: docs/quickstart.md — run `kiln agent` on your nodes and `kiln submit` from anywhere.')
  } finally {
    clearTimeout(limit)
    await procs.stopAll()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    out.line('')
    if (options.keep) out.line(`farm stopped; kept ${work}`)
    else {
      rmSync(work, { recursive: true, force: true })
      out.line(`farm stopped; removed ${work}`)
    }
  }
}

interface Narration {
  show: (line: string) => void
  out: Output
}

/** Starts alpha (`kiln up`: agent and gateway), then beta and gamma bootstrapped to it; returns them in that order, with the gateway's port. */
async function startFarm (procs: DemoProcs, init: {
  out: Output
  work: string
  port: number | undefined
  say: (text: string) => void
}): Promise<Agent[] & { port: number }> {
  const { out, say, work } = init
  say('Start a farm of three agents on loopback: alpha (also the gateway), beta, and gamma, which has a GPU')
  out.line('(Their trust/trust.yaml says `open: true`: they trust every peer, fine on loopback, never on a real network: docs/security.md.)')
  const gatewayListen = `127.0.0.1:${init.port ?? 0}`
  const alphaProc = procs.kilnInBackground('alpha', ['up', '--gateway-listen', gatewayListen, '--listen', LOOPBACK, '--no-mdns', '--json'])
  // `kiln up --json` prints one object, indented over several lines, once it is up.
  const up = UpReady.parse(JSON.parse((await alphaProc.waitFor(/^\{$[\s\S]*?^\}$/m))[0]))
  const addresses = up.multiaddrs.filter(a => /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//.test(a))
  const port = Number(new URL(up.url).port)
  if (addresses[0] === undefined) throw new CliError(`kiln up listens on no plain TCP loopback address: ${up.multiaddrs.join(', ')}`, { exitCode: EXIT.failure })
  const alpha: Agent = { name: 'alpha', role: 'agent and gateway', peerId: up.peerId, address: addresses[0] }

  out.line(`alpha is up: gateway ${up.url}, peer address ${alpha.address}`)
  const gpuConfig = join(work, 'gamma', 'kiln.yaml')
  writeFileSync(gpuConfig, GPU_CONFIG)
  procs.show('cat gamma/kiln.yaml')
  out.line(indent(GPU_CONFIG))
  const start = (name: string, role: string, options: KilnOptions): { done: Promise<Agent> } => {
    const p = procs.kilnInBackground(name, ['agent', '--bootstrap', alpha.address, '--listen', LOOPBACK, '--no-mdns'], options)
    // Wrapped so that a rejection before it is awaited is not unhandled.
    return { done: p.waitFor(/^listening: (\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/(\S+))$/m).then(m => ({ name, role, peerId: m[2] as string, address: m[1] as string })) }
  }
  const beta = start('beta', 'agent', {})
  const gamma = start('gamma', 'agent with gpu=demo', { config: gpuConfig })
  const [b, g] = await Promise.allSettled([beta.done, gamma.done])
  if (b.status === 'rejected') throw b.reason
  if (g.status === 'rejected') throw g.reason
  const agents = Object.assign([alpha, b.value, g.value], { port })
  out.table(agents, [
    { header: 'NODE', value: a => a.name },
    { header: 'PEER ID', value: a => a.peerId },
    { header: 'ROLE', value: a => a.role }
  ])
  out.line(`(Below, a peer id may be cut to its first 8 and last 6 characters: gamma is ${short(g.value.peerId)}.)`)
  return agents
}

/** Pulls `digest` through the gateway with skopeo, else reads the manifest's digest over plain HTTP; returns the digest served. */
async function pullThroughGateway (procs: DemoProcs, port: number, digest: string, out: Output): Promise<string> {
  const ref = `127.0.0.1:${port}/${IMAGE.repository}@${digest}`
  if (hasTool('skopeo')) {
    const inspected = z.looseObject({ Digest: z.string(), Layers: z.array(z.string()).nullable().optional() })
      .parse(JSON.parse(await procs.tool('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`], { echo: false })))
    out.line(`  "Digest": "${inspected.Digest}", "Layers": ${JSON.stringify(inspected.Layers ?? [])}`)
    return inspected.Digest
  }
  out.line('(skopeo is not installed: apt-get install skopeo; asking the gateway over plain HTTP instead)')
  const url = `http://127.0.0.1:${port}/v2/${IMAGE.repository}/manifests/${digest}`
  procs.show(`curl -sI -H 'Accept: application/vnd.oci.image.manifest.v1+json' ${url}`)
  const res = await fetch(url, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' }, signal: AbortSignal.timeout(60_000) })
  const served = res.headers.get('docker-content-digest') ?? ''
  out.line(`  HTTP ${res.status}, Docker-Content-Digest: ${served}`)
  return served
}

/** Runs the image as `kiln run` does, else shows the file the job made. */
async function runResult (init: Narration & { desk: string, rootfs: string, unpack: () => Promise<void>, signal: AbortSignal }): Promise<void> {
  const { show, out } = init
  const printFile = async (): Promise<void> => {
    await init.unpack()
    show(`kiln image unpack ${IMAGE.repository}:${IMAGE.tag} rootfs && cat rootfs/srv/message.txt`)
    out.line(indent(readFileSync(join(init.rootfs, 'srv', 'message.txt'), 'utf8')))
  }
  let run
  try {
    run = await runImage(init.desk, IMAGE.repository, IMAGE.tag, init.signal)
  } catch (err) {
    if (!isErrorOf(err, SandboxUnavailableError)) throw err
    out.line(`(no sandbox works here, so the image is not run: ${err.message}; kiln doctor says why)`)
    await printFile()
    return
  }
  if (run.argv === undefined) {
    out.line('(the image names no command: it is FROM scratch + COPY)')
    await printFile()
    return
  }
  show(`kiln run ${IMAGE.repository}:${IMAGE.tag}        # ${run.argv.join(' ')}, in the ${run.driver ?? ''} sandbox RUN steps use`)
  out.line(indent(run.output))
  if (run.exitCode !== 0) throw new CliError(`the image's command exited with ${String(run.exitCode)}`, { exitCode: EXIT.failure })
  if (!run.output.startsWith(DEMO_MESSAGE)) throw new CliError('the image\'s command did not print what the job wrote', { exitCode: EXIT.failure })
}
