/**
 * A RefStore that finds a ref under any spelling of its repository
 * (repositorySpellings: `busybox` is `docker.io/library/busybox`), so that
 * podman, containerd and Docker names reach the same stored image. The
 * spelling a ref was stored under wins, then the others in their order.
 * Writes (`set`) keep the name as given; `delete` removes the ref `find`
 * would return; `list()` and `repositories()` show names as stored.
 * Wrapping an aliased store again returns it unchanged.
 */
import type { Ref, RefStore } from '../content/index.ts'
import { repositorySpellings } from './reference.ts'

const aliased = new WeakSet<RefStore>()

export function aliasedRefStore (refs: RefStore): RefStore {
  if (aliased.has(refs)) return refs
  const find = (repository: string, tag: string): Ref | undefined => {
    for (const spelling of repositorySpellings(repository)) {
      const ref = refs.find(spelling, tag)
      if (ref !== undefined) return ref
    }
    return undefined
  }
  const wrapped: RefStore = {
    ...refs,
    find,
    get: (repository, tag) => find(repository, tag) ?? refs.get(repository, tag),
    delete: (repository, tag) => {
      const ref = find(repository, tag)
      return ref !== undefined && refs.delete(ref.repository, tag)
    },
    list: (repository) => {
      if (repository === undefined) return refs.list()
      const byTag = new Map<string, Ref>()
      for (const spelling of repositorySpellings(repository)) {
        for (const ref of refs.list(spelling)) if (!byTag.has(ref.tag)) byTag.set(ref.tag, ref)
      }
      return [...byTag.values()].sort((a, b) => a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0)
    }
  }
  aliased.add(wrapped)
  return wrapped
}
