/**
 * The Apptainer metadata of a SIF's root filesystem, `/.singularity.d`, as
 * Apptainer lays it out for an image it converts from OCI or builds from a
 * definition:
 *
 *   env/10-docker2singularity.sh  `export K='V'` for each Env of the image config
 *   env/90-environment.sh         the definition's %environment (kept), else Apptainer's empty stub
 *   runscript                     kept when the image has one (%runscript), else runs Entrypoint + Cmd
 *   labels.json                   kept when present (%labels), else the config's Labels
 *   Singularity                   the definition file, when the image was built from one
 *   actions/, libs/               empty dirs Apptainer fills at run time
 *   /singularity                  a symlink to .singularity.d/runscript
 *
 * The rootfs is an unpacked image, which is untrusted: a component that is
 * a symlink or a file where a directory belongs is replaced, and files are
 * written only after whatever held their name was removed, so nothing is
 * written outside the rootfs.
 */
import { lstat, mkdir, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { ImageConfig } from '../oci/index.ts'

const DIR = '.singularity.d'
const DEFAULT_ENVIRONMENT = '#!/bin/sh\n# Custom environment shell code should follow\n\n'

/** A word the shell reads back as exactly s. */
export function shellQuote (s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`
}

/** The 10-docker2singularity.sh text for an image's Env. */
export function dockerEnvScript (env: readonly string[]): string {
  const lines = ['#!/bin/sh']
  for (const kv of env) {
    const eq = kv.indexOf('=')
    const key = eq < 0 ? kv : kv.slice(0, eq)
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) continue // the shell cannot export it
    lines.push(`export ${key}=${shellQuote(eq < 0 ? '' : kv.slice(eq + 1))}`)
  }
  return `${lines.join('\n')}\n`
}

/**
 * The runscript for an image's Entrypoint and Cmd, with Docker's meaning as
 * Apptainer gives it: arguments to `apptainer run` replace Cmd, Entrypoint
 * stays; with neither, a shell.
 */
export function ociRunscript (entrypoint: readonly string[], cmd: readonly string[]): string {
  const ep = entrypoint.map(shellQuote).join(' ')
  const all = [...entrypoint, ...cmd].map(shellQuote).join(' ')
  const withArgs = ep === '' ? 'exec "$@"' : `exec ${ep} "$@"`
  const without = all === '' ? 'exec /bin/sh' : `exec ${all}`
  return `#!/bin/sh\nif [ "$#" -gt 0 ]; then\n  ${withArgs}\nfi\n${without}\n`
}

async function kind (path: string): Promise<'dir' | 'other' | 'none'> {
  const st = await lstat(path).catch(() => undefined)
  return st === undefined ? 'none' : st.isDirectory() ? 'dir' : 'other'
}

async function realDir (path: string): Promise<void> {
  const k = await kind(path)
  if (k === 'dir') return
  if (k === 'other') await rm(path, { force: true })
  await mkdir(path, { mode: 0o755 })
}

/** Writes a file whose name may be held by anything in the untrusted tree. */
async function put (path: string, text: string, mode: number): Promise<void> {
  await rm(path, { recursive: true, force: true })
  await writeFile(path, text, { mode, flag: 'wx' })
}

/** Whether a regular file is already there (a symlink does not count). */
async function hasFile (path: string): Promise<boolean> {
  return (await lstat(path).catch(() => undefined))?.isFile() === true
}

export interface ApptainerMetadataInput {
  config: ImageConfig
  /** The definition file the image was built from. */
  definition?: string
}

/** Adds the metadata to the rootfs at root. */
export async function writeApptainerMetadata (root: string, input: ApptainerMetadataInput): Promise<void> {
  const c = input.config.config ?? {}
  const meta = join(root, DIR)
  await realDir(meta)
  for (const sub of ['env', 'actions', 'libs']) await realDir(join(meta, sub))
  await put(join(meta, 'env', '10-docker2singularity.sh'), dockerEnvScript(c.Env ?? []), 0o755)
  if (!await hasFile(join(meta, 'env', '90-environment.sh'))) await put(join(meta, 'env', '90-environment.sh'), DEFAULT_ENVIRONMENT, 0o755)
  if (!await hasFile(join(meta, 'runscript'))) await put(join(meta, 'runscript'), ociRunscript(c.Entrypoint ?? [], c.Cmd ?? []), 0o755)
  if (!await hasFile(join(meta, 'labels.json'))) await put(join(meta, 'labels.json'), `${JSON.stringify(c.Labels ?? {}, null, '\t')}\n`, 0o644)
  if (input.definition !== undefined) await put(join(meta, 'Singularity'), input.definition, 0o644)
  if (await kind(join(root, 'singularity')) === 'none') await symlink(`${DIR}/runscript`, join(root, 'singularity'))
}
