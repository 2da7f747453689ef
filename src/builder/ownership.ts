/**
 * Who owns what in the layers kiln writes. Every file a build makes belongs,
 * on disk, to the node's one user (root in the step's user namespace), so a
 * layer entry's owner is whatever kiln writes in its tar header: 0:0 unless
 * kiln knows better.
 *
 * - `COPY --chown` / `ADD --chown`: kiln knows the owner the recipe asks for
 *   and writes it on every copied entry (`resolveOwner`, `withOwner`).
 * - RUN steps: a chown in the step is faked (root emulation,
 *   ./sandbox/seccomp.ts) and, where the node and stage allow it, recorded
 *   by the ownership ledger (./owner-ledger.ts), whose owners kiln writes in
 *   the step's layer. Where they do not (proot or unshare driver, no
 *   fakeroot, a stage without a new enough glibc, an emulated architecture),
 *   what the step writes is 0:0 in its layer (executor's `ownersRefusal`).
 * - `COPY --from` keeps the owners the other stage or image has (its
 *   layers' tar headers), and ADD keeps an archive's (./owner-ledger.ts).
 * An image with a RUN step whose owners are not kept is "flattened": the
 * build log says so and the manifest carries
 * PERMISSIONS_ANNOTATION=flattened (decided by the builder; docs/building.md,
 * "Ownership").
 *
 * Terms:
 * - owner spec: `USER[:GROUP]`, each a name or a number, as Docker takes it.
 *   Names are looked up in the stage's own /etc/passwd and /etc/group (the
 *   files as the layers below the step have them, resolved inside the
 *   stage's root); a number is used as given. A USER without GROUP takes the
 *   user's primary group from /etc/passwd when the user is a name there,
 *   else the same number as the uid (Docker's rule).
 */
import { readFile } from 'node:fs/promises'
import type { EntryOwner, LayerEntry, RootTree } from '../oci/index.ts'
import { resolveInRoot } from '../oci/index.ts'
import type { SourceLoc } from '../recipe/ir.ts'
import { UnknownOwnerError } from './errors.ts'

export interface Owner { uid: number, gid: number }

/** Name -> [id, primary gid] of an /etc/passwd or /etc/group text (gid unused for groups). */
function parseIds (text: string): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>()
  for (const line of text.split('\n')) {
    const f = line.split(':')
    const id = Number(f[2]); const gid = Number(f[3])
    if (f.length >= 3 && f[0] !== '' && Number.isInteger(id) && id >= 0 && !out.has(f[0] as string)) out.set(f[0] as string, [id, Number.isInteger(gid) ? gid : id])
  }
  return out
}

/** Larger account files are not read (a step can make /etc/passwd a sparse file of any size): as if absent. */
const MAX_ACCOUNT_FILE_BYTES = 16 * 1024 * 1024

async function readInRoot (tree: RootTree, path: string): Promise<string> {
  const found = await resolveInRoot(tree, path).catch(() => undefined)
  if (found?.entry === undefined || !found.entry.st.isFile() || found.entry.st.size > MAX_ACCOUNT_FILE_BYTES) return ''
  return await readFile(found.entry.host, 'utf8').catch(() => '')
}

const numeric = (s: string): number | undefined => /^\d+$/.test(s) && Number(s) <= 0xffffffff ? Number(s) : undefined

/** The owner a spec names in the stage whose root is `tree`; throws UnknownOwnerError for a name the stage does not know. */
export async function resolveOwner (spec: string, tree: RootTree, source?: SourceLoc): Promise<Owner> {
  const [user = '', group] = spec.split(':', 2)
  if (user === '' || group === '') throw new UnknownOwnerError(`--chown=${spec}: expected USER[:GROUP]`, source)
  let uid = numeric(user)
  let gid = group === undefined ? undefined : numeric(group)
  if (uid === undefined) {
    const found = parseIds(await readInRoot(tree, '/etc/passwd')).get(user)
    if (found === undefined) throw new UnknownOwnerError(`--chown=${spec}: no user ${user} in the stage's /etc/passwd`, source)
    uid = found[0]
    if (group === undefined) gid = found[1]
  }
  if (gid === undefined && group !== undefined) {
    const found = parseIds(await readInRoot(tree, '/etc/group')).get(group)
    if (found === undefined) throw new UnknownOwnerError(`--chown=${spec}: no group ${group} in the stage's /etc/group`, source)
    gid = found[0]
  }
  return { uid, gid: gid ?? uid }
}

/**
 * HOME for a RUN step whose environment sets none, as Docker's runtime
 * sets it: the home dir of the USER (name or uid; root without USER) in the
 * stage's /etc/passwd, else `/`.
 */
export async function homeOf (tree: RootTree, userSpec: string | undefined): Promise<string> {
  const user = (userSpec ?? '').split(':', 1)[0] ?? ''
  const name = user === '' ? 'root' : user
  const uid = numeric(name)
  for (const line of (await readInRoot(tree, '/etc/passwd')).split('\n')) {
    const f = line.split(':')
    if (f.length < 6 || (uid !== undefined ? Number(f[2]) !== uid || f[2] === '' : f[0] !== name)) continue
    return f[5] !== undefined && f[5] !== '' ? f[5] : '/'
  }
  return '/'
}

/** A subtree of a layer whose entries get one owner: `path` itself unless `childrenOnly`, and all below it. */
export interface OwnedTree { path: string, childrenOnly?: boolean }

/** The entries with the owner set on those inside one of the trees (paths relative to the root, no leading `/`). */
export function withOwner (entries: readonly LayerEntry[], trees: readonly OwnedTree[], owner: Owner): LayerEntry[] {
  const inside = (path: string): boolean => trees.some(t => t.path === '' || path.startsWith(`${t.path}/`) || (t.childrenOnly !== true && path === t.path))
  return entries.map(e => e.type === 'whiteout' || e.type === 'opaque' || !inside(e.path) ? e : { ...e, ...owner } satisfies EntryOwner & LayerEntry)
}

/**
 * Entries inside `trees` with permission bits `mode` (COPY --chmod): what
 * the step wrote on disk keeps the owner's read and search bits, which kiln
 * needs to read it back, so the exact bits are set here, in the layer.
 */
export function withMode (entries: readonly LayerEntry[], trees: readonly OwnedTree[], mode: number): LayerEntry[] {
  const inside = (path: string): boolean => trees.some(t => t.path === '' || path.startsWith(`${t.path}/`) || (t.childrenOnly !== true && path === t.path))
  return entries.map(e => (e.type === 'file' || e.type === 'directory') && inside(e.path) ? { ...e, mode } : e)
}

/** Manifest annotation saying the image's file ownership is not what the recipe made (value `flattened`). */
export const PERMISSIONS_ANNOTATION = 'org.kiln.permissions'
