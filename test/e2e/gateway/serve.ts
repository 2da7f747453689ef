/**
 * A gateway on a loopback socket over a temp store, for e2e tests with real
 * clients (the conformance suite, skopeo).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createFsContentStore } from '../../../src/content/fs-store.ts'
import { openDb } from '../../../src/db/index.ts'
import { createRefStore } from '../../../src/content/refs.ts'
import { createGateway } from '../../../src/gateway/index.ts'
import type { Gateway, GatewayInit } from '../../../src/gateway/index.ts'

export interface ServedGateway {
  gateway: Gateway
  url: string
  /** host:port, as docker:// references want it. */
  hostPort: string
  dir: string
  stop: () => Promise<void>
}

export async function serveGateway (init: Partial<GatewayInit> = {}): Promise<ServedGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-gw-e2e-'))
  const store = await createFsContentStore({ root: join(dir, 'store') })
  const db = openDb(join(dir, 'kiln.db'))
  const refs = createRefStore(db)
  const gateway = createGateway({ store, refs, db, uploadDir: join(dir, 'uploads'), deleteEnabled: true, ...init })
  const { url, port } = await gateway.listen('127.0.0.1', 0)
  return {
    gateway,
    url,
    hostPort: `127.0.0.1:${port}`,
    dir,
    stop: async () => {
      await gateway.close()
      db.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
}
