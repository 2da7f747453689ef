/**
 * Gateway auth under attack: what password checks cost the gateway and
 * what they reveal. A gateway runs in a child process
 * (./_gateway-auth-host.ts, user `ci`); this process is the clients. Prints:
 *
 * - login timing: median time of a basic-auth `GET /v2/` with a wrong
 *   password for an existing user and for names that do not exist (a
 *   difference tells an attacker which names exist);
 * - a token-authenticated blob GET (64 KiB), median and worst of
 *   KILN_BENCH_GETS (20) alone, then of KILN_BENCH_ATTACKED_GETS (5) while
 *   KILN_BENCH_ATTACKERS clients (40, each from its own loopback address
 *   127.0.1.N) send wrong passwords for `ci` as fast as they are answered;
 *   and what those clients got.
 *
 * KILN_BENCH_AUTH (JSON, e.g. login limits) is handed to the gateway's auth
 * settings, to measure one protection with another switched off.
 *
 *   node test/bench/gateway-auth.ts            (or npm run bench -- gateway-auth)
 */
import { fork } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { join } from 'node:path'

const attackers = Number(process.env.KILN_BENCH_ATTACKERS ?? 40)
const gets = Number(process.env.KILN_BENCH_GETS ?? 20)
const attackedGets = Number(process.env.KILN_BENCH_ATTACKED_GETS ?? 5)
const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`

interface Answer { status: number, body: Buffer, headers: Record<string, string | string[] | undefined> }

async function call (url: string, method: string, path: string, headers: Record<string, string>, body?: Buffer, localAddress?: string): Promise<Answer> {
  const { hostname, port } = new URL(url)
  return await new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, method, path, headers: { ...headers, ...(body === undefined ? {} : { 'content-length': String(body.byteLength) }) }, agent: false, ...(localAddress === undefined ? {} : { localAddress }) }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

async function timed (work: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now()
  await work()
  return performance.now() - t0
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] as number }
const ms = (x: number): string => x < 100 ? `${x.toFixed(1)} ms` : `${(x / 1000).toFixed(2)} s`

const child = fork(join(import.meta.dirname, '_gateway-auth-host.ts'), [], { execArgv: ['--disable-warning=ExperimentalWarning'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
try {
  const url = await new Promise<string>((resolve, reject) => {
    child.once('message', m => { resolve((m as { url: string }).url) })
    child.once('exit', code => { reject(new Error(`gateway host exited (${code})`)) })
  })

  // Login timing, alternating the two kinds; each attempt from its own address and (unknown) name so no limit applies.
  const known: number[] = []
  const unknown: number[] = []
  for (let i = 0; i < 10; i++) {
    known.push(await timed(async () => await call(url, 'GET', '/v2/', { authorization: basic('probe', `wrong-${i}`) }, undefined, `127.0.2.${i + 1}`)))
    unknown.push(await timed(async () => await call(url, 'GET', '/v2/', { authorization: basic(`nobody-${i}`, 'wrong') }, undefined, `127.0.3.${i + 1}`)))
  }
  console.log(`login, wrong password: existing user ${ms(median(known))}, unknown user ${ms(median(unknown))} (medians of 10)`)

  const tokenAnswer = await call(url, 'GET', '/token?service=kiln-gateway&scope=repository:bench/auth:pull,push', { authorization: basic('ci', 'pw') })
  if (tokenAnswer.status !== 200) throw new Error(`token refused: ${tokenAnswer.status} ${tokenAnswer.body.toString()}`)
  const token = (JSON.parse(tokenAnswer.body.toString()) as { token: string }).token
  const bearer = { authorization: `Bearer ${token}` }
  const blob = randomBytes(64 * 1024)
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`
  const pushed = await call(url, 'POST', `/v2/bench/auth/blobs/uploads/?digest=${digest}`, bearer, blob)
  if (pushed.status !== 201) throw new Error(`push failed: ${pushed.status} ${pushed.body.toString()}`)
  const getBlob = async (): Promise<number> => await timed(async () => {
    const r = await call(url, 'GET', `/v2/bench/auth/blobs/${digest}`, bearer)
    if (r.status !== 200 || r.body.byteLength !== blob.byteLength) throw new Error(`GET failed: ${r.status} ${r.body.toString()}`)
  })
  const alone: number[] = []
  for (let i = 0; i < gets; i++) alone.push(await getBlob())

  let stop = false
  const statuses = new Map<number, number>()
  const retryAfter = new Set<string>()
  const attack = async (n: number): Promise<void> => {
    const localAddress = `127.0.1.${n + 1}`
    while (!stop) {
      const r = await call(url, 'GET', '/v2/', { authorization: basic('ci', `guess-${n}`) }, undefined, localAddress)
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1)
      if (r.headers['retry-after'] !== undefined) retryAfter.add(String(r.headers['retry-after']))
    }
  }
  const attacking = Array.from({ length: attackers }, async (_, n) => { await attack(n) })
  await new Promise(resolve => setTimeout(resolve, 1000))
  const underAttack: number[] = []
  for (let i = 0; i < attackedGets; i++) underAttack.push(await getBlob())
  stop = true
  await Promise.all(attacking)
  console.log(`token blob GET alone: median ${ms(median(alone))}, worst ${ms(Math.max(...alone))} (${gets} GETs)`)
  console.log(`token blob GET with ${attackers} wrong-password clients: median ${ms(median(underAttack))}, worst ${ms(Math.max(...underAttack))} (${attackedGets} GETs)`)
  console.log(`their answers: ${[...statuses].sort().map(([s, n]) => `${n} x ${s}`).join(', ')}${retryAfter.size === 0 ? '' : `, Retry-After ${[...retryAfter].join('/')}`}`)
} finally {
  child.disconnect()
}
