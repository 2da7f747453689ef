/**
 * A layer as a list of changes, before it becomes a tar: what both differs
 * produce and the layer writer consumes. Paths are relative to the root,
 * `/`-separated, without a leading slash.
 */

export type LayerEntry =
  | { type: 'dir', path: string, mode: number, mtimeMs: number }
  /** `source` is the host file holding the content. */
  | { type: 'file', path: string, mode: number, mtimeMs: number, size: number, source: string }
  | { type: 'symlink', path: string, mode: number, mtimeMs: number, target: string }
  /** `path` was deleted: the tar gets `dir/.wh.name`. */
  | { type: 'whiteout', path: string }
  /** `path` (a dir also listed as 'dir') hides everything below it in lower layers: the tar gets `path/.wh..wh..opq`. */
  | { type: 'opaque', path: string }

/** Tar order: byte-wise by path, so a dir comes before what it holds; an opaque marker right after its dir. */
export function sortEntries (entries: LayerEntry[]): LayerEntry[] {
  const key = (e: LayerEntry): string => e.type === 'opaque' ? `${e.path}/\u0000` : e.path
  return [...entries].sort((a, b) => {
    const ka = key(a)
    const kb = key(b)
    return ka < kb ? -1 : ka > kb ? 1 : 0
  })
}
