/**
 * The status page end to end in headless Chromium (Debian's `chromium`,
 * driven by puppeteer-core): `kiln up` runs as the unprivileged user with a
 * users file and anonymous pulls off; without credentials the page is a
 * 401; a trusted requester submits a job its agent builds, a build is
 * POSTed to the gateway's build extension and pulled; the
 * page, opened with the user's credentials, shows this node, a second
 * agent joined to it as a peer with its platform and institution (markup,
 * shown as text), the job's and the build's rows with a line of each log, the pull and
 * store usage; its screenshot is
 * a PNG of the viewport's size that is not blank (a blank page's is, which
 * the same decoder checks first).
 *
 * Chromium runs with a profile in a temp dir over a pipe (no debugging
 * port), and the test checks its process is gone before removing the dir.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser } from 'puppeteer-core'
import { hashPassword } from '../../../src/gateway/index.ts'
import type { StatusDocument } from '../../../src/gateway/index.ts'
import { kilnProcs } from '../../helpers/kiln-procs.ts'
import type { KilnProcs } from '../../helpers/kiln-procs.ts'
import { decodePng } from '../../helpers/png.ts'
import { findTool, haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import { makeContext } from '../../helpers/context.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { tarOf } from './fixtures.ts'

const USER = 'viewer'
const PASSWORD = 'status-page-pw'
const auth = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`
const VIEWPORT = { width: 1100, height: 800 }
/** The second agent's institution: markup that must reach the page as text. */
const MARKUP = '<b id="injected">peer</b>'

describe.skipIf(!haveTools('chromium'))('status page in headless Chromium', () => {
  let u: Unprivileged
  let procs: KilnProcs
  let url: string
  let peerId: string
  let otherId: string
  let upAddr: string
  let requesterData: string
  let ctxDir: string
  let profile: string
  let browser: Browser | undefined

  beforeAll(async () => {
    u = makeUnprivileged()
    procs = kilnProcs(u)
    const gatewayDir = join(u.dataDir, 'gateway')
    mkdirSync(gatewayDir, { recursive: true })
    writeFileSync(join(gatewayDir, 'users.yaml'), [
      'users:',
      `  - name: ${USER}`,
      `    passwordHash: "${await hashPassword(PASSWORD)}"`,
      '    access:',
      '      - repository: "**"',
      '        allow: [read, write, build]',
      ''
    ].join('\n'))
    // A requester the node trusts, and that trusts it, for a job its agent builds.
    requesterData = join(u.home, 'data-requester')
    mkdirSync(requesterData, { mode: 0o700 })
    ctxDir = makeContext(u, { Dockerfile: 'FROM scratch\nCOPY job.txt /job.txt\n', 'job.txt': 'built as a job\n' }, {}, 'job-context')
    u.give(u.dataDir)
    u.give(requesterData)
    const [selfId, requesterId] = [await procs.peerId(u.dataDir), await procs.peerId(requesterData)]
    await procs.run(u.dataDir, ['trust', 'add-peer', requesterId, '--roles', 'requester'])
    await procs.run(requesterData, ['trust', 'add-peer', selfId, '--roles', 'builder'])
    const up = procs.start(['--log-level', 'warn', 'up', '--gateway-listen', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--no-anonymous-read', '--json'], u.dataDir)
    url = (await up.waitFor(/"url":\s*"(http:\/\/[^"]+)"/, 120_000))[1] as string
    peerId = (await up.waitFor(/"peerId":\s*"([^"]+)"/))[1] as string
    upAddr = (await up.waitFor(/"(\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/[^"]+)"/))[1] as string
    // A second node, joined to the first: a peer the page lists with its capability record.
    const otherData = join(u.home, 'data-peer')
    mkdirSync(otherData, { mode: 0o700 })
    u.give(otherData)
    const other = procs.start(['--log-level', 'warn', 'agent', '--listen', '/ip4/127.0.0.1/tcp/0', '--bootstrap', upAddr, '--no-mdns', '--no-jobs', '--platform', 'linux/arm64', '--institution', MARKUP], otherData)
    otherId = (await other.waitFor(/listening: \/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/(\S+)/, 120_000))[1] as string
    profile = mkdtempSync(join(tmpdir(), 'kiln-chromium-'))
  }, 180_000)

  afterAll(async () => {
    const child = browser?.process()
    await browser?.close()
    if (child !== undefined && child !== null && child.exitCode === null && child.signalCode === null) {
      await new Promise(resolve => child.once('exit', resolve))
    }
    if (profile !== undefined) rmSync(profile, { recursive: true, force: true })
    await procs?.stopAll()
    u?.cleanup()
  }, 60_000)

  it('asks for a login without credentials', async () => {
    for (const path of ['/_kiln/status', '/_kiln/status.json']) {
      const r = await fetch(`${url}${path}`)
      expect(r.status).toBe(401)
      expect(r.headers.get('www-authenticate')).toMatch(/^Basic realm="kiln status"/)
      await r.arrayBuffer()
    }
  })

  it('shows the node, a peer, a job and a build with their logs, the pull and the store, in a screenshot that is not blank', async () => {
    const context = Buffer.concat([
      tarOf('Dockerfile', Buffer.from('FROM scratch\nCOPY hello.txt /hello.txt\nCMD ["/hello.txt"]\n')).subarray(0, -1024),
      tarOf('hello.txt', Buffer.from('hello from the status page\n'))
    ])
    const posted = await fetch(`${url}/v2/demo/status/_kiln/builds?platform=linux/amd64&tag=1`, { method: 'POST', headers: { 'content-type': 'application/x-tar', authorization: auth }, body: context })
    expect(posted.status, await posted.clone().text()).toBe(202)
    const { id } = await posted.json() as { id: string }
    const logs = await fetch(`${url}/v2/demo/status/_kiln/builds/${id}/logs`, { headers: { authorization: auth }, signal: AbortSignal.timeout(120_000) })
    const logText = await logs.text()
    expect(logText, logText).toContain('COPY hello.txt /hello.txt')
    const pulled = await fetch(`${url}/v2/demo/status/manifests/1`, { headers: { authorization: auth, accept: 'application/vnd.oci.image.manifest.v1+json' } })
    expect(pulled.status).toBe(200)
    const digest = pulled.headers.get('docker-content-digest') as string
    await pulled.arrayBuffer()
    const job = await procs.exec(['submit', '--platform', 'linux/amd64', '--to', peerId, '--bootstrap', upAddr, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--timeout', '200', '--json', ctxDir], requesterData, 240_000)
    expect(job.code, job.stderr).toBe(0)
    const { jobId } = JSON.parse(job.stdout) as { jobId: string }
    const doc = await (await fetch(`${url}/_kiln/status.json`, { headers: { authorization: auth } })).json() as StatusDocument
    expect(doc.node?.peerId).toBe(peerId)
    expect(doc.jobs[0]).toMatchObject({ jobId, platform: 'linux/amd64', state: 'succeeded' })
    expect(doc.pulls[0]).toMatchObject({ repository: 'demo/status', reference: '1', digest, user: USER })

    const { default: puppeteer } = await import('puppeteer-core')
    browser = await puppeteer.launch({
      executablePath: findTool('chromium') as string,
      headless: true,
      pipe: true,
      userDataDir: profile,
      env: { ...process.env, TMPDIR: profile, HOME: profile },
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check', '--disable-breakpad', '--disable-crash-reporter', '--disable-extensions']
    })
    const page = await browser.newPage()
    await page.setViewport(VIEWPORT)

    // The decoder tells a blank page from a drawn one.
    const blank = decodePng(await page.screenshot({ type: 'png' }))
    expect(blank).toMatchObject({ width: VIEWPORT.width, height: VIEWPORT.height, colours: 1, dominantShare: 1 })

    await page.setExtraHTTPHeaders({ authorization: auth })
    const response = await page.goto(`${url}/_kiln/status`, { waitUntil: 'load', timeout: 60_000 })
    expect(response?.status()).toBe(200)
    await page.waitForSelector('tr[data-kind="build"] pre[data-log]', { timeout: 60_000 })
    await page.waitForSelector('tr[data-kind="job"] pre[data-log]', { timeout: 60_000 })
    // Page code as strings: the tests compile without the DOM's types.
    await page.waitForFunction("document.querySelector('#pulls-body tr[data-kind=\"pull\"]') !== null && document.getElementById('store-info').textContent.includes('blobs')", { timeout: 60_000 })
    await page.waitForFunction(`document.getElementById('peers-body').textContent.includes('linux/arm64')`, { timeout: 60_000 })
    const text = await page.evaluate(`({
      peers: document.getElementById('peers-body').textContent,
      injected: document.getElementById('injected') !== null,
      node: document.getElementById('node-info').textContent,
      job: document.querySelector('tr[data-kind="job"]').textContent,
      jobLog: document.querySelector('tr[data-kind="job"] pre[data-log]').textContent,
      build: document.querySelector('tr[data-kind="build"]').textContent,
      log: document.querySelector('tr[data-kind="build"] pre[data-log]').textContent,
      pulls: document.getElementById('pulls-body').textContent,
      store: document.getElementById('store-info').textContent,
      problem: document.getElementById('problem').textContent
    })`) as Record<'peers' | 'job' | 'jobLog' | 'node' | 'build' | 'log' | 'pulls' | 'store' | 'problem', string> & { injected: boolean }
    expect(text.problem).toBe('')
    expect(text.node).toContain(peerId)
    expect(text.peers).toContain(otherId)
    expect(text.peers).toContain(MARKUP)
    expect(text.injected).toBe(false)
    expect(text.job).toContain(jobId)
    expect(text.job).toContain('succeeded')
    expect(text.jobLog).toContain('COPY job.txt /job.txt')
    expect(text.build).toContain(id)
    expect(text.build).toContain('demo/status:1')
    expect(text.build).toContain('succeeded')
    expect(text.log).toContain('COPY hello.txt /hello.txt')
    expect(text.pulls).toContain(digest)
    expect(text.pulls).toContain(USER)
    expect(text.store).toMatch(/blobs\d+ \(/)

    const png = await page.screenshot({ type: 'png' })
    // To look at it: KILN_TEST_SCREENSHOT=/tmp/status.png npx vitest run test/e2e/gateway/status-page.test.ts
    if (process.env.KILN_TEST_SCREENSHOT !== undefined) writeFileSync(process.env.KILN_TEST_SCREENSHOT, png)
    const shot = decodePng(png)
    expect(shot.width).toBe(VIEWPORT.width)
    expect(shot.height).toBe(VIEWPORT.height)
    // Text, tables and coloured states: many colours, no one of them nearly everywhere.
    expect(shot.colours).toBeGreaterThan(20)
    expect(shot.dominantShare).toBeLessThan(0.95)
  }, 240_000)
})
