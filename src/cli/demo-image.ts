/**
 * The images of `kiln demo`. The *base* is Debian's busybox-static copied
 * into an image (`FROM scratch` + COPY, so building it needs no sandbox);
 * the *job recipe* is what the farm builds: on the base with a RUN step
 * when the base can be made, else `FROM scratch` + COPY only, so that
 * `npm run demo` works on a machine with no busybox and no sandbox. Running
 * the result is what `kiln run` does (src/builder/container.ts).
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { resolveImage } from '../oci/index.ts'
import { openLocalStore } from '../content/index.ts'
import { runContainer } from '../builder/index.ts'

/** What the job's recipe copies into the image, and what running the image prints first. */
export const DEMO_MESSAGE = 'Hello from an image built by a kiln farm, without root.'

/** Debian's busybox-static, when installed: a statically linked busybox runs in an image with no libc. */
export function staticBusybox (): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v "$0"', 'busybox'], { encoding: 'utf8' })
  const path = r.status === 0 ? r.stdout.trim() : ''
  if (path === '') return undefined
  const head = readFileSync(path).subarray(0, 4096)
  // A dynamic ELF names its interpreter (PT_INTERP): "/lib64/ld-linux..." or "/lib/ld-".
  const isStatic = head.subarray(0, 4).toString('latin1') === '\x7fELF' && !head.toString('latin1').includes('/ld-')
  return isStatic ? path : undefined
}

/** Writes the base's build context into `dir`: a root file system of busybox and its applets, and its Dockerfile. */
export function writeBusyboxBase (dir: string, busybox: string): void {
  const root = join(dir, 'rootfs')
  for (const d of ['bin', 'etc', 'tmp', 'root', 'usr/bin']) mkdirSync(join(root, d), { recursive: true })
  chmodSync(join(root, 'tmp'), 0o1777)
  copyFileSync(busybox, join(root, 'bin', 'busybox'))
  chmodSync(join(root, 'bin', 'busybox'), 0o755)
  const applets = spawnSync(busybox, ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter(a => a !== '' && a !== 'busybox')
  for (const a of applets) symlinkSync('busybox', join(root, 'bin', a))
  writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n')
  writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\n')
  writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/bin:/usr/bin:/bin\nCMD ["/bin/sh"]\n')
}

/** Writes the job's context into `dir`; `base` is the base's name, or undefined for the recipe without RUN. */
export function writeJobContext (dir: string, base: string | undefined): void {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'message.txt'), `${DEMO_MESSAGE}\n`)
  writeFileSync(join(dir, 'Dockerfile'), (base !== undefined
    ? [
        `FROM ${base}`,
        'COPY message.txt /srv/message.txt',
        'RUN echo "built as uid $(id -u) in a user namespace on $(uname -m)" >> /srv/message.txt',
        'LABEL org.opencontainers.image.description="kiln demo"',
        'CMD ["cat", "/srv/message.txt"]'
      ]
    : [
        'FROM scratch',
        'COPY message.txt /srv/message.txt',
        'LABEL org.opencontainers.image.description="kiln demo"'
      ]).join('\n') + '\n')
}

export interface RunImageResult {
  /** The command run (entrypoint then command), or undefined when the image names none. */
  argv?: string[]
  driver?: string
  exitCode: number | null
  output: string
}

/**
 * Runs the image `repository:tag` of the store in `dataDir` as `kiln run`
 * does (src/builder/container.ts), its output collected. Throws
 * SandboxUnavailableError when no sandbox driver works here.
 */
export async function runImage (dataDir: string, repository: string, tag: string, signal: AbortSignal): Promise<RunImageResult> {
  const store = await openLocalStore(dataDir)
  try {
    const { digest, mediaType, size } = store.refs.get(repository, tag)
    const image = await resolveImage(store.content, { digest, mediaType, size })
    const c = image.config.config
    if ([...c?.Entrypoint ?? [], ...c?.Cmd ?? []].length === 0) return { exitCode: null, output: '' }
    let output = ''
    const r = await runContainer({
      store: store.content,
      image: image.descriptor,
      workDir: join(dataDir, 'build'),
      signal,
      timeoutMs: 30_000,
      onOutput: (_stream, chunk) => { output += Buffer.from(chunk).toString() }
    })
    return { argv: r.argv, driver: r.driver, exitCode: r.exitCode, output }
  } finally {
    store.close()
  }
}
