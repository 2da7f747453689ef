/**
 * `kiln run [flags] IMAGE [CMD...]`: run an image of the local store
 * rootlessly, in the sandbox the builder uses for RUN steps, with podman's
 * flags (-v, -e, --env-file, -w, -u, --entrypoint, --network, -i). The
 * work is src/builder/container.ts; this file reads the flags. Everything
 * after IMAGE is the command (main.ts stops reading flags there).
 */
import type { Command } from 'commander'
import type { CliContext } from '../context.ts'
import { CliError } from '../errors.ts'
import { EXIT } from '../exit-codes.ts'

interface RunFlags {
  volume: string[]
  env: string[]
  envFile: string[]
  workdir?: string
  user?: string
  entrypoint?: string
  network: string
  interactive?: boolean
  tty?: boolean
  rm?: boolean
  sandbox?: string
}

const SANDBOX_CHOICES = ['auto', 'bwrap', 'unshare', 'proot'] as const
type SandboxChoice = typeof SANDBOX_CHOICES[number]
const isSandboxChoice = (v: string): v is SandboxChoice => (SANDBOX_CHOICES as readonly string[]).includes(v)

const collect = (value: string, previous: string[]): string[] => [...previous, value]

/** `HOST:CTR[:ro|rw]`. */
function parseVolume (text: string): { source: string, target: string, readOnly: boolean } {
  const parts = text.split(':')
  const [source = '', target = '', mode] = parts
  if (parts.length < 2 || parts.length > 3 || source === '' || target === '' || (mode !== undefined && mode !== 'ro' && mode !== 'rw')) {
    throw new CliError(`-v ${JSON.stringify(text)}: expected HOST:CTR or HOST:CTR:ro`, { exitCode: EXIT.usage, hint: 'for example -v "$PWD/data:/data" or -v /scratch/in:/in:ro (named volumes do not exist in kiln)' })
  }
  if (!source.startsWith('/') && !source.startsWith('.')) {
    throw new CliError(`-v ${JSON.stringify(text)}: the host side must be a path (absolute, or starting with ./)`, { exitCode: EXIT.usage, hint: `for example -v ./${source}:${target}` })
  }
  return { source, target, readOnly: mode === 'ro' }
}

/** podman's env file: `NAME=VALUE` or `NAME` (taken from kiln's environment) per line; blank lines and `#` comments skipped. */
async function readEnvFile (file: string): Promise<string[]> {
  const { readFile } = await import('node:fs/promises')
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new CliError(`--env-file ${file}: ${(err as Error).message}`, { exitCode: EXIT.usage })
  }
  return text.split('\n').map(l => l.replace(/\r$/, '')).filter(l => l.trim() !== '' && !l.trimStart().startsWith('#'))
}

/** `--entrypoint`: a JSON array as is, else one word (podman's rule); "" clears the image's. */
function parseEntrypoint (text: string): string[] {
  if (text === '') return []
  if (text.trimStart().startsWith('[')) {
    let parsed: unknown
    try { parsed = JSON.parse(text) } catch { parsed = undefined }
    if (!Array.isArray(parsed) || !parsed.every(s => typeof s === 'string')) {
      throw new CliError(`--entrypoint ${text}: not a JSON array of strings`, { exitCode: EXIT.usage, hint: 'for example --entrypoint \'["/bin/sh","-c"]\' or --entrypoint /bin/sh' })
    }
    return parsed as string[]
  }
  return [text]
}

export function register (program: Command, ctx: CliContext): void {
  program.command('run')
    .usage('[options] IMAGE [COMMAND [ARG...]]')
    .description('run an image of the local store rootlessly, in the sandbox of RUN steps; nothing persists but what -v mounts')
    .argument('<image>', 'REPO[:TAG] or sha256:<digest> in the local store (busybox finds docker.io/library/busybox too)')
    .argument('[command...]', 'the command and its arguments, replacing the image\'s Cmd (flags after IMAGE belong to it)')
    .option('-v, --volume <HOST:CTR[:ro]>', 'bind a host file or dir into the container, read-only with :ro (repeatable)', collect, [])
    .option('-e, --env <NAME=VALUE|NAME>', 'set a variable; NAME alone takes it from kiln\'s environment (repeatable)', collect, [])
    .option('--env-file <file>', 'read NAME=VALUE / NAME lines from a file, before -e (repeatable)', collect, [])
    .option('-w, --workdir <dir>', 'working directory inside the container (default: the image\'s WorkingDir, else /)')
    .option('-u, --user <user[:group]>', 'run as this user and group: names from the image\'s /etc/passwd and /etc/group, or numbers (default: the image\'s User, else root)')
    .option('--entrypoint <cmd>', 'replace the image\'s Entrypoint: a program, or a JSON array; "" clears it (the image\'s Cmd is then dropped too)')
    .option('--network <mode>', 'none (loopback only, as builds) or host', 'none')
    .option('-i, --interactive', 'pass kiln\'s stdin to the command (default: it reads /dev/null)')
    .option('-t, --tty', 'set TERM from kiln\'s environment; no pseudo-terminal is made: with -i the command reads the terminal kiln reads')
    .option('--rm', 'accepted for podman compatibility: every kiln run is removed when it ends')
    .option('--sandbox <driver>', 'sandbox driver: auto, bwrap, unshare or proot (default $KILN_SANDBOX, else build.sandbox in kiln.yaml, else auto)')
    .addHelpText('after', `
The root filesystem is the image's layers, unpacked once and shared with builds,
under a throwaway overlay: what the command writes is gone when it ends, except
in -v mounts. The command runs as the node's own user seen as uid 0 (or the
-u user), in a user namespace with no real privileges; kiln's exit status is
the command's (128+N when signal N killed it). See docs/images.md, "Running an image".

Examples:
  kiln run demo/hello:1                                 the image's entrypoint and command
  kiln run -e GREETING=hi busybox sh -c 'echo $GREETING'
  kiln run -v "$PWD/out:/out" -w /out hpc/app:v1 ./simulate --steps 100
  kiln run -v /scratch/ref:/ref:ro -u 1000 hpc/app:v1 id -u
  kiln run -i busybox sh < script.sh
  kiln run --network=host debian:12 apt-get update`)
    .action(async (imageText: string, command: string[], flags: RunFlags) => {
      if (flags.network !== 'none' && flags.network !== 'host') {
        throw new CliError(`--network ${flags.network}: expected none or host`, { exitCode: EXIT.usage, hint: 'kiln has no container networks: none (the default) gives loopback only, host the node\'s network' })
      }
      const volumes = flags.volume.map(parseVolume)
      const env: string[] = []
      for (const f of flags.envFile) env.push(...await readEnvFile(f))
      env.push(...flags.env)
      if (flags.tty === true) env.unshift(`TERM=${process.env.TERM ?? 'xterm'}`)
      const config = await ctx.config()
      const sandboxChoice = flags.sandbox ?? config.build.sandbox
      if (!isSandboxChoice(sandboxChoice)) throw new CliError(`--sandbox ${sandboxChoice}: expected one of ${SANDBOX_CHOICES.join(', ')}`, { exitCode: EXIT.usage })
      const store = await ctx.store()
      const { resolveLocalImage } = await import('../local-image.ts')
      const image = await resolveLocalImage(store, imageText)
      const [{ join }, { sweepAtStart }, { ContainerSetupError, createSandbox, runContainer }, { isErrorOf }] = await Promise.all([
        import('node:path'), import('../sweep-at-start.ts'), import('../../builder/index.ts'), import('../../util/error-class.ts')
      ])
      await sweepAtStart(store.root)
      const workDir = join(store.root, 'build')
      const sandbox = await createSandbox({ ...(sandboxChoice !== 'auto' ? { driver: sandboxChoice } : {}), probeCacheDir: workDir })
      const ac = new AbortController()
      let stoppedBy: NodeJS.Signals | undefined
      const onSignal = (sig: NodeJS.Signals): void => { stoppedBy = sig; ac.abort(new Error(`stopped by ${sig}`)) }
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      process.once('SIGHUP', onSignal)
      try {
        const r = await runContainer({
          store: store.content,
          image: image.descriptor,
          workDir,
          sandbox,
          command,
          env,
          volumes,
          network: flags.network === 'host',
          interactive: flags.interactive === true,
          signal: ac.signal,
          ...(flags.entrypoint !== undefined ? { entrypoint: parseEntrypoint(flags.entrypoint) } : {}),
          ...(flags.workdir !== undefined ? { workingDir: flags.workdir } : {}),
          ...(flags.user !== undefined ? { user: flags.user } : {})
        })
        ctx.exitCode(r.exitCode)
      } catch (err) {
        if (stoppedBy !== undefined) {
          const { constants } = await import('node:os')
          ctx.exitCode(128 + constants.signals[stoppedBy])
          return
        }
        if (isErrorOf(err, ContainerSetupError)) {
          const e = err as InstanceType<typeof ContainerSetupError>
          throw new CliError(e.message, { exitCode: EXIT.usage, cause: err, ...(e.hint !== undefined ? { hint: e.hint } : {}) })
        }
        throw err
      } finally {
        process.off('SIGINT', onSignal)
        process.off('SIGTERM', onSignal)
        process.off('SIGHUP', onSignal)
      }
    })
}
