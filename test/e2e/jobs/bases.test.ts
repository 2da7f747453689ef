/**
 * Bases travel peer to peer (protocols/job.md §3.1), end to end, every party
 * its own process as uid 65534: one institution's root; a third agent C
 * that takes no jobs and only serves its store; and, for each case, a fresh
 * requester and a fresh builder agent, whose stores hold no base unless the
 * case puts it there, so whatever base the builder builds on reached it
 * during the job. The requester sends the job straight to that builder
 * (`--to`).
 *
 * Cases: the base only in R's store (by name); the base only at C (named by
 * digest: R pins it from the network without holding its layers, the
 * builder fetches them from C); an Apptainer `Bootstrap: docker` job whose
 * base R pulls from a loopback registry the builder is not allowed to ask;
 * and a base nobody provides, refused before the job is signed with its
 * name and digest. A built image must start with the base's layers.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeBusyboxBase } from '../../helpers/busybox-base.ts'
import { haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { makeContext } from '../../helpers/context.ts'
import { addressOf, kilnProcs } from '../../helpers/kiln-procs.ts'
import type { KilnProcs, Proc } from '../../helpers/kiln-procs.ts'
import { startDockerRegistry } from '../../integration/registry/docker-registry.ts'
import type { DockerRegistry } from '../../integration/registry/docker-registry.ts'

interface Manifest { layers: Array<{ digest: string }> }

describe.skipIf(!haveTools('setpriv', 'umoci', 'busybox', 'skopeo', 'docker-registry'))('bases travel peer to peer', () => {
  let u: Unprivileged
  let k: KilnProcs
  let registry: DockerRegistry | undefined
  let layout: string
  let rootPub: string
  let baseDigest: string
  let baseLayers: string[]
  let c: Proc
  let addrC: string
  let n = 0
  const dir = (name: string): string => {
    const d = join(u.work, name)
    mkdirSync(d, { recursive: true })
    u.give(d)
    return d
  }
  const kiln = (dataDir: string, args: string[]): string => {
    const r = u.kiln(args, { dataDir })
    if (r.status !== 0) throw new Error(`kiln ${args.join(' ')} exited ${r.status}: ${r.stderr}`)
    return r.stdout
  }
  const peerId = (dataDir: string): string => (JSON.parse(kiln(dataDir, ['key', 'show', '--json'])) as { peerId: string }).peerId
  const blobPath = (dataDir: string, digest: string): string => join(dataDir, 'store', 'blobs', 'sha256', digest.slice(7))
  const manifestOf = (dataDir: string, digest: string): Manifest => JSON.parse(readFileSync(blobPath(dataDir, digest), 'utf8')) as Manifest

  let root: string

  beforeAll(async () => {
    u = makeUnprivileged()
    k = kilnProcs(u)
    layout = makeBusyboxBase(u)
    root = dir('root')
    const agentC = dir('agentC')
    rootPub = (JSON.parse(kiln(root, ['trust', 'init-root', '--institution', 'uni-a', '--json'])) as { publicPath: string }).publicPath
    // C holds the base and serves its store; it builds nothing.
    kiln(agentC, ['image', 'import', `oci:${layout}:base`, '-t', 'site/busybox:base'])
    baseDigest = (JSON.parse(kiln(agentC, ['image', 'inspect', 'site/busybox:base', '--json'])) as { digest: string }).digest
    baseLayers = manifestOf(agentC, baseDigest).layers.map(l => l.digest)
    c = k.start(['agent', '--no-jobs', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--log-level', 'warn'], agentC)
    addrC = await addressOf(c)
  }, 240_000)

  afterAll(async () => {
    await k?.stopAll()
    await registry?.stop()
    u?.cleanup()
  }, 60_000)

  /** A fresh requester certified by the root, trusting its builders, its store empty. */
  const newRequester = (): string => {
    const dataDir = dir(`requester-${++n}`)
    const cert = join(u.work, `requester-${n}.cert.json`)
    kiln(root, ['trust', 'issue', '--role', 'requester', peerId(dataDir), '-o', cert])
    kiln(dataDir, ['trust', 'add-cert', cert])
    kiln(dataDir, ['trust', 'add-root', rootPub, '--roles', 'builder'])
    return dataDir
  }

  /** A fresh builder certified by the root, trusting its requesters, its store empty; joined to C. */
  const startBuilder = async (): Promise<{ proc: Proc, addr: string, id: string, dataDir: string }> => {
    const dataDir = dir(`builder-${++n}`)
    const cert = join(u.work, `builder-${n}.cert.json`)
    const id = peerId(dataDir)
    kiln(root, ['trust', 'issue', '--role', 'builder', id, '-o', cert])
    kiln(dataDir, ['trust', 'add-cert', cert])
    kiln(dataDir, ['trust', 'add-root', rootPub, '--roles', 'requester'])
    const proc = k.start(['agent', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--platform', 'linux/amd64', '--log-level', 'warn', '--bootstrap', addrC], dataDir)
    return { proc, addr: await addressOf(proc), id, dataDir }
  }

  const context = (files: Record<string, string>): string => makeContext(u, files)

  /** Submits to `builder` only; resolves with the exit code, the summary and the progress lines. */
  const submit = async (requester: string, ctx: string, builder: { addr: string, id: string }, started?: (p: Proc) => Promise<void>): Promise<{ code: number, summary?: { digest: string, platforms: Array<{ builders: string[] }> }, log: string }> => {
    const p = k.start(['submit', '--platform', 'linux/amd64', '--to', builder.id, '--bootstrap', `${builder.addr},${addrC}`, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--offer-window', '3000', '--timeout', '200', '--json', ctx], requester)
    await started?.(p)
    const code = await p.exited
    let summary
    try { summary = JSON.parse(p.stdout()) } catch { summary = undefined }
    return { code, summary, log: p.stderr() }
  }

  const expectBuiltOnBase = (requester: string, builder: { id: string, dataDir: string }, r: Awaited<ReturnType<typeof submit>>, pinned: string): void => {
    expect(r.summary?.platforms[0]?.builders).toEqual([builder.id])
    // The image starts with the base's layers: the builder built on the pinned base, which it now holds whole.
    expect(manifestOf(requester, r.summary?.digest as string).layers.map(l => l.digest).slice(0, baseLayers.length)).toEqual(baseLayers)
    for (const d of [pinned, ...baseLayers]) expect(existsSync(blobPath(builder.dataDir, d)), d).toBe(true)
  }

  it('a base only in the requester\'s store, named by tag, reaches the builder from the requester', { timeout: 300_000 }, async () => {
    const requester = newRequester()
    kiln(requester, ['image', 'import', `oci:${layout}:base`, '-t', 'mine/busybox:base'])
    const b = await startBuilder()
    expect(existsSync(blobPath(b.dataDir, baseDigest))).toBe(false)
    const r = await submit(requester, context({ Dockerfile: 'FROM mine/busybox:base\nRUN echo on-the-requesters-base > /r.txt\n' }), b)
    expect(r.code, `${r.log}\n--- builder:\n${b.proc.stderr()}`).toBe(0)
    expect(r.log).toContain(`[linux/amd64] base mine/busybox:base pinned to ${baseDigest}`)
    expectBuiltOnBase(requester, b, r, baseDigest)
  })

  it('a base named by digest that only a third agent holds: the requester pins it from the network, the builder fetches it from that agent', { timeout: 300_000 }, async () => {
    const requester = newRequester()
    const b = await startBuilder()
    const r = await submit(requester, context({ Dockerfile: `FROM site/busybox@${baseDigest}\nRUN echo on-a-third-agents-base > /c.txt\n` }), b)
    expect(r.code, `${r.log}\n--- builder:\n${b.proc.stderr()}\n--- C:\n${c.stderr()}`).toBe(0)
    expect(r.log).toContain(`base site/busybox@${baseDigest} pinned to ${baseDigest}`)
    // Neither the builder nor the requester held the layers before the job (both fresh): the builder got them from C.
    expectBuiltOnBase(requester, b, r, baseDigest)
  })

  it('an Apptainer Bootstrap: docker job: the requester pulls the base from a registry once, the builder gets it peer to peer', { timeout: 300_000 }, async () => {
    registry = await startDockerRegistry()
    execFileSync('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${layout}:base`, `docker://${registry.hostPort}/kiln/busybox:1`])
    const requester = newRequester()
    const b = await startBuilder()
    const def = `Bootstrap: docker\nFrom: ${registry.hostPort}/kiln/busybox:1\n\n%post\n    echo on-a-registry-base > /apptainer.txt\n`
    const from = `docker://${registry.hostPort}/kiln/busybox:1`
    // Once the requester has pinned the base, the registry goes: the builder can only have it from the requester.
    const r = await submit(requester, context({ 'Singularity.def': def }), b, async (p) => {
      await p.waitFor(/ pinned to sha256:/, 120_000)
      await registry?.stop()
      registry = undefined
    })
    expect(r.code, `${r.log}\n--- builder:\n${b.proc.stderr()}`).toBe(0)
    expect(r.log).toContain(`[linux/amd64] base ${from} pinned to ${baseDigest}`)
    expectBuiltOnBase(requester, b, r, baseDigest)
  })

  it('a base nobody provides fails the job before it is signed, naming the base and its digest', { timeout: 300_000 }, async () => {
    const missing = `sha256:${'ab'.repeat(32)}`
    // No builder is needed: the job never leaves the requester. It asks the network (C) for the digest.
    const r = await submit(newRequester(), context({ Dockerfile: `FROM ${missing}\nRUN true\n` }), { addr: addrC, id: addrC.split('/p2p/')[1] as string })
    expect(r.code).toBe(3)
    expect(r.log).toMatch(new RegExp(`base image ${missing} for linux/amd64: ${missing} is not in the store, and no peer provides it`))
    expect(r.log).not.toMatch(/published/)
  })
})
