/**
 * Owners set inside RUN steps, kept: the builder's side of the ownership
 * ledger (the sandbox's side: ./sandbox/fakeroot.ts; docs/building.md,
 * "Ownership").
 *
 * Terms:
 * - recorded owner: uid, gid and permission bits (0o7777) of a path that
 *   differ from what a file on disk says by itself, i.e. a uid or gid
 *   other than 0, or a setuid/setgid bit (which unpacking strips). Every
 *   other path is 0:0 with its mode on disk.
 * - stage owners: the recorded owners of a stage's filesystem, composed
 *   from the tar headers of its layers, bottom first (a whiteout or opaque
 *   dir drops what it hides, a later entry replaces an earlier one). A
 *   layer's summary is read once per process (`layerOwners`), or given by
 *   the layer recorder for the layers this process writes.
 * - ledger: faked's state, one line per inode, `dev=HEX,ino=N,mode=OCT,
 *   uid=N,gid=N,nlink=N,rdev=N`. In: the stage owners at the inodes the
 *   step will see (a lower file's inode, found through the stage's layer
 *   dirs; `dev=DEV` is filled in by the sandbox). Out: every owner the step
 *   set, at the inodes it saw.
 * - seen inode of a path after the step: overlayfs shows a new file's
 *   upper inode, and a copied-up file or merged dir with the inode of the
 *   lower it came from (layers on one filesystem); both are tried, the
 *   upper one first.
 */
import { lstat, readFile } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { join } from 'node:path'
import type { ContentStore, Digest } from '../content/index.ts'
import { readTar, resolveInRoot } from '../oci/index.ts'
import type { LayerEntry, RootTree, TarHeader } from '../oci/index.ts'
import { decompressDetected } from '../oci/layer/compression.ts'
import { LayerTree } from './rootfs-view.ts'
import { fakerootGlibcMinor, hostFakeroot, maxGlibcMinor } from './sandbox/fakeroot.ts'
import { entryFor } from './snapshotter/diff.ts'

export interface Recorded { uid: number, gid: number, mode: number }

/** What one layer says about owners: recorded ones, paths it sets back to plain 0:0, what it deletes. */
export interface LayerOwners {
  owned: Map<string, Recorded | null>
  whiteouts: string[]
  opaques: string[]
}

const S_IFMT = 0o170000
const S_IFCHR = 0o020000
const S_IFBLK = 0o060000
const SPECIAL_BITS = 0o6000

/** The recorded owner of uid, gid and mode, or null for a plain 0:0 path (see Terms). */
export const recorded = (uid: number, gid: number, mode: number): Recorded | null => uid !== 0 || gid !== 0 || (mode & SPECIAL_BITS) !== 0 ? { uid, gid, mode: mode & 0o7777 } : null

const strip = (name: string): string => name.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '')

/** The owners summary of entries the builder writes. */
export function summarizeEntries (entries: readonly LayerEntry[]): LayerOwners {
  const out: LayerOwners = { owned: new Map(), whiteouts: [], opaques: [] }
  for (const e of entries) {
    const path = strip(e.path)
    if (e.type === 'whiteout') out.whiteouts.push(path)
    else if (e.type === 'opaque') out.opaques.push(path)
    else out.owned.set(path, recorded(e.uid ?? 0, e.gid ?? 0, e.type === 'symlink' ? 0o777 : e.mode))
  }
  return out
}


/** The owners summary of tar headers, fed one by one (by tarOwners, or by an extraction that reads them anyway). */
export function ownersCollector (): { add: (h: TarHeader) => void, owners: LayerOwners } {
  const out: LayerOwners = { owned: new Map(), whiteouts: [], opaques: [] }
  const add = (h: TarHeader): void => {
    const path = strip(h.name)
    if (path === '') return
    const slash = path.lastIndexOf('/')
    const base = path.slice(slash + 1)
    const dir = slash < 0 ? '' : path.slice(0, slash)
    if (base === '.wh..wh..opq') out.opaques.push(dir)
    else if (base.startsWith('.wh.')) out.whiteouts.push(slash < 0 ? base.slice(4) : `${dir}/${base.slice(4)}`)
    else if (h.type === 'file' || h.type === 'directory' || h.type === 'symlink' || h.type === 'hardlink') out.owned.set(path, recorded(h.uid, h.gid, h.mode))
  }
  return { add, owners: out }
}

/** The owners summary of a tar stream (a layer, or an archive ADD extracts), from its headers. */
export async function tarOwners (source: AsyncIterable<Uint8Array>): Promise<LayerOwners> {
  const c = ownersCollector()
  const { tar } = await decompressDetected(source)
  for await (const { header } of readTar(tar)) c.add(header)
  return c.owners
}

/**
 * Entries with the recorded owners of an archive extracted at `prefix`
 * (a path of the layer, '' for the root): uid, gid and permission bits
 * (setuid bits included, which extraction strips) of the archive's entry of
 * the same path.
 */
export function withArchiveOwners (entries: readonly LayerEntry[], prefix: string, owners: LayerOwners): LayerEntry[] {
  return entries.map(e => {
    if (e.type === 'whiteout' || e.type === 'opaque') return e
    const path = strip(e.path)
    const rel = prefix === '' ? path : path.startsWith(`${prefix}/`) ? path.slice(prefix.length + 1) : undefined
    const r = rel === undefined ? undefined : owners.owned.get(rel)
    return r === undefined || r === null ? e : withRecorded(e, r)
  })
}

/**
 * Entries with the owners a COPY --from source had: `at` is where the
 * source landed in the layer, `src` its path in the source's root (for a
 * directory source, its contents: `at` itself is the destination dir,
 * which the copy makes as root, as Docker does).
 */
export function withCopiedOwners (entries: readonly LayerEntry[], at: string, src: string, isDir: boolean, owners: ReadonlyMap<string, Recorded>): LayerEntry[] {
  return entries.map(e => {
    if (e.type === 'whiteout' || e.type === 'opaque') return e
    const path = strip(e.path)
    let from: string | undefined
    if (path === at) from = isDir ? undefined : src
    else if (at === '' || path.startsWith(`${at}/`)) {
      const rel = at === '' ? path : path.slice(at.length + 1)
      from = src === '' ? rel : `${src}/${rel}`
    }
    const r = from === undefined ? undefined : owners.get(from)
    return r === undefined ? e : withRecorded(e, r)
  })
}

/** The owners of a stack of layers by digest, bottom first (COPY --from's source). */
export async function ownersOfLayers (store: ContentStore, digests: readonly string[], signal?: AbortSignal): Promise<Map<string, Recorded>> {
  return composeOwners(await Promise.all(digests.map(async d => await layerOwners(store, d, signal))))
}

/**
 * Summaries by layer digest (or by the step key of a layer still being
 * written), least recently used dropped first once they hold more than
 * MAX_SUMMARY_PATHS paths in all (a Debian base layer has some 20 000; a
 * path costs some 150 bytes here).
 */
const summaries = new Map<string, { value: Promise<LayerOwners>, paths: number }>()
const MAX_SUMMARY_PATHS = 400_000
let summaryPaths = 0

function forget (digest: string): void {
  const had = summaries.get(digest)
  if (had === undefined) return
  summaries.delete(digest)
  summaryPaths -= had.paths
}

function remember (digest: string, value: Promise<LayerOwners>, paths = 0): void {
  forget(digest)
  summaries.set(digest, { value, paths })
  summaryPaths += paths
  while (summaryPaths > MAX_SUMMARY_PATHS && summaries.size > 1) forget(summaries.keys().next().value as string)
}

const sizeOf = (o: LayerOwners): number => o.owned.size + o.whiteouts.length + o.opaques.length

/** Gives the summary of a layer this process writes, under its digest (or the step key it stands under until written). */
export function rememberLayerOwners (digest: string, owners: LayerOwners): void {
  remember(digest, Promise.resolve(owners), sizeOf(owners))
}

export async function layerOwners (store: ContentStore, digest: string, signal?: AbortSignal): Promise<LayerOwners> {
  const had = summaries.get(digest)
  if (had !== undefined) {
    // Most recently used last.
    summaries.delete(digest)
    summaries.set(digest, had)
    return await had.value
  }
  const p = tarOwners(store.read(digest as Digest, signal !== undefined ? { signal } : {}))
  remember(digest, p)
  // Counted once read; a failed read is not kept.
  p.then(o => { if (summaries.get(digest)?.value === p) remember(digest, p, sizeOf(o)) }, () => { if (summaries.get(digest)?.value === p) forget(digest) })
  return await p
}

const under = (path: string, dir: string): boolean => dir === '' || path.startsWith(`${dir}/`)

/** The stage owners of a stack of layers, bottom first. */
export function composeOwners (layers: readonly LayerOwners[]): Map<string, Recorded> {
  const out = new Map<string, Recorded>()
  for (const l of layers) {
    for (const dir of l.opaques) for (const p of out.keys()) if (under(p, dir)) out.delete(p)
    for (const w of l.whiteouts) for (const p of out.keys()) if (p === w || under(p, w)) out.delete(p)
    for (const [p, r] of l.owned) { if (r === null) out.delete(p); else out.set(p, r) }
  }
  return out
}

/** A parsed ledger line. */
export interface LedgerRecord { dev: string, ino: number, mode: number, uid: number, gid: number, nlink: number, rdev: number }

export function parseLedger (text: string): LedgerRecord[] {
  const out: LedgerRecord[] = []
  for (const line of text.split('\n')) {
    const m = /^dev=([0-9a-fA-F]+|DEV),ino=(\d+),mode=([0-7]+),uid=(\d+),gid=(\d+),nlink=(\d+),rdev=(\d+)$/.exec(line.trim())
    if (m === null) continue
    out.push({ dev: (m[1] as string).toLowerCase(), ino: Number(m[2]), mode: parseInt(m[3] as string, 8), uid: Number(m[4]), gid: Number(m[5]), nlink: Number(m[6]), rdev: Number(m[7]) })
  }
  return out
}

export const formatLedger = (r: LedgerRecord): string => `dev=${r.dev},ino=${r.ino},mode=${r.mode.toString(8)},uid=${r.uid},gid=${r.gid},nlink=${r.nlink},rdev=${r.rdev}`

/** What a step starts from: the ledger's `in` text, and the path of each inode in it. */
export interface LedgerInput { text: string, paths: Map<number, string>, records: Map<number, LedgerRecord> }

/** The stage owners as faked's load file, at the inodes of their files in the stage's layer dirs (top-most first). */
export async function ledgerInput (owners: ReadonlyMap<string, Recorded>, lowers: readonly string[]): Promise<LedgerInput> {
  const tree = new LayerTree(lowers)
  const paths = new Map<number, string>()
  const records = new Map<number, LedgerRecord>()
  for (const [path, r] of owners) {
    const e = await tree.entry(path.split('/')).catch(() => undefined)
    if (e === undefined) continue
    const rec: LedgerRecord = { dev: 'dev', ino: e.st.ino, mode: (e.st.mode & S_IFMT) | r.mode, uid: r.uid, gid: r.gid, nlink: e.st.nlink, rdev: 0 }
    paths.set(e.st.ino, path)
    records.set(e.st.ino, rec)
  }
  const text = [...records.values()].map(r => formatLedger({ ...r, dev: 'DEV' })).join('\n')
  return { text: text === '' ? '' : `${text}\n`, paths, records }
}

const sameRecord = (a: LedgerRecord, b: LedgerRecord): boolean => a.mode === b.mode && a.uid === b.uid && a.gid === b.gid

/** The owner a ledger record gives an entry whose file on disk has stats `st`, or undefined when the record is stale (another kind of file). */
function ownerFrom (rec: LedgerRecord, st: Stats): Recorded | undefined {
  if ((rec.mode & S_IFMT) !== (st.mode & S_IFMT)) return undefined
  return { uid: rec.uid, gid: rec.gid, mode: st.isSymbolicLink() ? st.mode & 0o7777 : rec.mode & 0o7777 }
}

function withRecorded (e: LayerEntry, r: Recorded): LayerEntry {
  if (e.type === 'whiteout' || e.type === 'opaque') return e
  const owner = { uid: r.uid, gid: r.gid }
  if (e.type === 'symlink') return { ...e, ...owner }
  return { ...e, ...owner, mode: r.mode }
}

/**
 * The step's layer entries with the owners its ledger recorded: entries of
 * the upper dir at the inodes the step saw; paths the step made devices of
 * (libfakeroot makes an empty file for a faked mknod) dropped, as kiln
 * carries no devices; and lower files whose owner or mode the step changed
 * without copying them up added, from their lower file.
 */
export async function applyLedger (entries: readonly LayerEntry[], out: string, rootdev: string, input: LedgerInput, upper: string, lowers: readonly string[]): Promise<LayerEntry[]> {
  const dev = rootdev.trim().toLowerCase()
  const byIno = new Map<number, LedgerRecord>()
  for (const r of parseLedger(out)) if (r.dev === dev) byIno.set(r.ino, r)
  const tree = new LayerTree(lowers)
  const used = new Set<number>()
  const result: LayerEntry[] = []
  for (const e of entries) {
    if (e.type === 'whiteout' || e.type === 'opaque') { result.push(e); continue }
    const st = await lstat(join(upper, e.path))
    const lower = await tree.entry(e.path.split('/')).catch(() => undefined)
    const seen = [st.ino, ...(lower !== undefined ? [lower.st.ino] : [])]
    const ino = seen.find(i => byIno.has(i))
    const rec = ino !== undefined ? byIno.get(ino) : undefined
    if (ino !== undefined) used.add(ino)
    if (rec !== undefined && ((rec.mode & S_IFMT) === S_IFCHR || (rec.mode & S_IFMT) === S_IFBLK) && st.isFile() && st.size === 0) continue
    const r = rec !== undefined ? ownerFrom(rec, st) : undefined
    result.push(r !== undefined ? withRecorded(e, r) : e)
  }
  // Lower files the step chowned or chmodded without writing them: no copy-up, so not in the upper dir.
  const changed: Array<[string, LedgerRecord]> = []
  const unknown = new Map<number, LedgerRecord>()
  for (const [ino, rec] of byIno) {
    if (used.has(ino)) continue
    const before = input.records.get(ino)
    if (before !== undefined ? sameRecord(before, rec) : recorded(rec.uid, rec.gid, rec.mode) === null) continue
    const path = input.paths.get(ino)
    if (path !== undefined) changed.push([path, rec]); else unknown.set(ino, rec)
  }
  if (unknown.size > 0) for (const [ino, path] of await findInLowers(lowers, new Set(unknown.keys()))) changed.push([path, unknown.get(ino) as LedgerRecord])
  for (const [path, rec] of changed) {
    const e = await tree.entry(path.split('/')).catch(() => undefined)
    if (e === undefined) continue
    const entry = await entryFor(path, e.host, e.st)
    const r = ownerFrom(rec, e.st)
    if (entry !== undefined && r !== undefined) result.push(withRecorded(entry, r))
  }
  return result.sort((a, b) => Buffer.compare(Buffer.from(a.type === 'opaque' ? `${a.path}/\u0000` : a.path), Buffer.from(b.type === 'opaque' ? `${b.path}/\u0000` : b.path)))
}

/**
 * The merged paths of the files with these inodes in the layer dirs, in one
 * walk that stops when all are found (only for a chown of lower files the
 * stage owners do not know; an inode no longer there costs a whole walk).
 */
async function findInLowers (lowers: readonly string[], inos: ReadonlySet<number>): Promise<Map<number, string>> {
  const tree = new LayerTree(lowers)
  const found = new Map<number, string>()
  const walk = async (comps: string[]): Promise<void> => {
    for (const name of await tree.list(comps).catch(() => [])) {
      if (found.size === inos.size) return
      const c = [...comps, name]
      const e = await tree.entry(c).catch(() => undefined)
      if (e === undefined) continue
      if (inos.has(e.st.ino) && !found.has(e.st.ino)) found.set(e.st.ino, c.join('/'))
      if (e.st.isDirectory()) await walk(c)
    }
  }
  await walk([])
  return found
}

/** The glibc version of a libc file, by host path and stats: every RUN asks, the file rarely changes. */
const libcVersions = new Map<string, number | undefined>()

const LIBC_PATHS = ['lib/x86_64-linux-gnu/libc.so.6', 'lib/aarch64-linux-gnu/libc.so.6', 'lib64/libc.so.6', 'usr/lib64/libc.so.6', 'lib/libc.so.6', 'usr/lib/libc.so.6']

/**
 * Why the ledger cannot run in a stage whose root is `tree`, or undefined
 * when it can: libfakeroot is loaded into the stage's programs, so the
 * stage needs a glibc at least as new as the host's libfakeroot asks for
 * (no glibc: a static, musl or busybox image).
 */
export async function glibcRefusal (tree: RootTree): Promise<string | undefined> {
  const need = fakerootGlibcMinor()
  if (need === undefined) return hostFakeroot().refusal ?? 'no fakeroot on this node'
  for (const p of LIBC_PATHS) {
    const found = await resolveInRoot(tree, p).catch(() => undefined)
    if (found?.entry === undefined || !found.entry.st.isFile()) continue
    const { host, st } = found.entry
    const seen = `${host}\0${st.ino}\0${st.size}\0${st.mtimeMs}`
    let have = libcVersions.get(seen)
    if (!libcVersions.has(seen)) {
      have = maxGlibcMinor(await readFile(host))
      libcVersions.set(seen, have)
      if (libcVersions.size > 64) libcVersions.delete(libcVersions.keys().next().value as string)
    }
    if (have === undefined) continue
    return have >= need ? undefined : `the stage's glibc is 2.${have}, older than the 2.${need} this node's libfakeroot needs`
  }
  return 'the stage has no glibc (a static, musl or busybox image), into which libfakeroot cannot be loaded'
}
