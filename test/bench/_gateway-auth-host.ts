/**
 * A child process of the gateway auth benchmark (test/bench/gateway-auth.ts):
 * a gateway on loopback over a temp store, with users `ci` (password `pw`,
 * read and write everywhere) and `probe` (for timing wrong passwords). Its auth settings beyond that come as
 * JSON in KILN_BENCH_AUTH (e.g. login limits). Tokens last an hour: under
 * attack, the old gateway took minutes to serve one request. It sends `{ url }` over the
 * IPC channel once listening and exits, removing its store, when the parent
 * goes away, so a killed bench leaves nothing behind.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createFsContentStore } from '../../src/content/fs-store.ts'
import { openDb } from '../../src/db/index.ts'
import { createRefStore } from '../../src/content/refs.ts'
import { createGateway, hashPassword } from '../../src/gateway/index.ts'
import type { GatewayAuthInit } from '../../src/gateway/index.ts'

const dir = await mkdtemp(join(tmpdir(), 'kiln-bench-auth-'))
const store = await createFsContentStore({ root: join(dir, 'store') })
const db = openDb(join(dir, 'kiln.db'))
const extra = JSON.parse(process.env.KILN_BENCH_AUTH ?? '{}') as Partial<GatewayAuthInit>
const gateway = createGateway({
  store,
  refs: createRefStore(db),
  db,
  uploadDir: join(dir, 'uploads'),
  auth: {
    anonymousRead: false,
    users: [
      { name: 'ci', passwordHash: await hashPassword('pw'), access: [{ repository: '**', allow: ['read', 'write'] }] },
      { name: 'probe', passwordHash: await hashPassword('probe-pw'), access: [] }
    ],
    tokenTtlSeconds: 3600,
    ...extra
  }
})
const { url } = await gateway.listen('127.0.0.1', 0)
process.send?.({ url })
process.on('disconnect', () => {
  void gateway.close().then(async () => {
    db.close()
    await rm(dir, { recursive: true, force: true })
    process.exit(0)
  })
})
