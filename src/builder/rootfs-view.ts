/**
 * Reading a stage's filesystem without mounting it: a stack of layer dirs
 * (top-most first: step snapshots holding overlay whiteouts, then the base
 * rootfs; in scan mode the stage's one plain root) seen the way overlayfs
 * merges them, as a `RootTree` for the in-root resolver
 * (src/oci/layer/in-root.ts). Paths are always resolved through that
 * resolver first, so this file never meets a symlink among the parents it
 * is given and never follows one.
 *
 * Merging, as overlayfs: a name is taken from the top-most layer that has
 * it; a whiteout (char device 0/0) hides it and everything below; a
 * directory merges with the layers below only down to the first layer where
 * the same path is not a directory. Opaque markers (an xattr node cannot
 * read) are not looked at: a dir a step emptied and refilled still shows
 * the names of the layers below it here, as it did before.
 */
import { lstat, readdir, readlink } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { join } from 'node:path'
import type { RootTree, TreeEntry } from '../oci/index.ts'

function whiteout (st: Stats): boolean { return st.isCharacterDevice() && st.rdev === 0 }

/** What one layer has at a directory path of the merged view. */
type DirState = 'dir' | 'absent' | 'hides'

async function lstatOrUndefined (path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    throw err
  }
}

export class LayerTree implements RootTree {
  readonly layers: readonly string[]
  /** `${layer index}\0${path}` -> state, for directory paths the merged view has looked at. */
  private readonly states = new Map<string, DirState>()

  /** `layers`: absolute, real host dirs, top-most first; at least one. */
  constructor (layers: readonly string[]) {
    if (layers.length === 0) throw new TypeError('LayerTree needs at least one layer dir')
    this.layers = layers
  }

  /** What layer i has at each of the first `n` prefixes of comps: 'absent' or 'hides' at the first that is not a dir. */
  private async prefixState (i: number, comps: readonly string[], n: number): Promise<DirState> {
    for (let j = 1; j <= n; j++) {
      const key = `${i}\0${comps.slice(0, j).join('/')}`
      let s = this.states.get(key)
      if (s === undefined) {
        const st = await lstatOrUndefined(join(this.layers[i] as string, ...comps.slice(0, j)))
        s = st === undefined ? 'absent' : st.isDirectory() ? 'dir' : 'hides'
        this.states.set(key, s)
      }
      if (s !== 'dir') return s
    }
    return 'dir'
  }

  async entry (comps: readonly string[]): Promise<TreeEntry | undefined> {
    if (comps.length === 0) {
      const host = this.layers[this.layers.length - 1] as string
      return { st: await lstat(host), host }
    }
    for (let i = 0; i < this.layers.length; i++) {
      const parents = await this.prefixState(i, comps, comps.length - 1)
      if (parents === 'hides') return undefined
      if (parents === 'absent') continue
      const host = join(this.layers[i] as string, ...comps)
      const st = await lstatOrUndefined(host)
      if (st === undefined) continue
      return whiteout(st) ? undefined : { st, host }
    }
    return undefined
  }

  async readlink (comps: readonly string[]): Promise<string> {
    const e = await this.entry(comps)
    if (e === undefined) throw Object.assign(new Error(`no entry ${comps.join('/')}`), { code: 'ENOENT' })
    return await readlink(e.host)
  }

  /** Names in the merged directory `comps` (which the view has as a directory), sorted by byte order. */
  async list (comps: readonly string[]): Promise<string[]> {
    const out = new Set<string>()
    const hidden = new Set<string>()
    for (let i = 0; i < this.layers.length; i++) {
      const s = await this.prefixState(i, comps, comps.length)
      if (s === 'hides') break
      if (s === 'absent') continue
      const dir = join(this.layers[i] as string, ...comps)
      for (const name of await readdir(dir)) {
        if (out.has(name) || hidden.has(name)) continue
        const st = await lstat(join(dir, name))
        if (whiteout(st)) hidden.add(name); else out.add(name)
      }
    }
    return [...out].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
  }
}
