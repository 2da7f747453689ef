/**
 * What keeps a blob alive, gathered from every module that holds content:
 * image names, pins, leases of running builds and transfers, and the
 * gateway's repositories (manifests pushed by digest only). `kiln gc` marks
 * from here; it sits in src/node because it reads both src/content and
 * src/gateway, which do not import each other.
 */
import type { Digest, LocalStore } from '../content/index.ts'

export async function gcRoots (store: LocalStore): Promise<Set<Digest>> {
  const { createLeases } = await import('../content/index.ts')
  const { createPins } = await import('../content/pins.ts')
  const { gatewayGcRoots } = await import('../gateway/index.ts')
  const roots = new Set<Digest>(store.refs.list().map(r => r.digest))
  for (const d of createPins(store.db, store.refs).roots()) roots.add(d)
  for (const d of createLeases(store.db).held()) roots.add(d)
  for (const d of gatewayGcRoots(store.db)) roots.add(d)
  return roots
}
