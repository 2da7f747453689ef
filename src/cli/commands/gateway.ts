/**
 * `kiln gateway`: serve the local store over the OCI distribution API, and
 * `kiln gateway hash-password` to make entries for the users file.
 */
import type { Command } from 'commander'
import type { CliContext } from '../context.ts'
import { CliError } from '../errors.ts'
import { EXIT } from '../exit-codes.ts'

interface GatewayOptions {
  listen?: string
  anonymousRead?: boolean
  anonymousPush?: boolean
  tlsCert?: string
  tlsKey?: string
  insecureListen?: boolean
  users?: string
  deleteEnabled?: boolean
  json?: boolean
}

function splitHostPort (text: string): { host: string, port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text)
  if (m === null || Number(m[2]) > 65535) throw new CliError(`--listen ${JSON.stringify(text)} is not HOST:PORT`, { exitCode: EXIT.usage, hint: 'for example --listen 127.0.0.1:5000' })
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port: Number(m[2]) }
}

function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

async function readSecret (): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of process.stdin) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
}

export function register (program: Command, ctx: CliContext): void {
  const gateway = program.command('gateway')
    .description('serve the local store to podman, skopeo, Apptainer and containerd over the OCI distribution API')
    .option('--listen <host:port>', 'address to listen on (default from config, 127.0.0.1:5000)')
    .option('--anonymous-read', 'let anyone pull (default from config: on)')
    .option('--no-anonymous-read', 'require a login to pull')
    .option('--anonymous-push', 'let anyone push and delete too (loopback only; for local use and CI)')
    .option('--tls-cert <file>', 'PEM certificate chain: serve HTTPS')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .option('--insecure-listen', 'allow plain HTTP on a non-loopback address')
    .option('--users <file>', 'users file (YAML): names, password hashes, repository rules (default <data-dir>/gateway/users.yaml if present)')
    .option('--delete-enabled', 'allow DELETE of manifests, tags and blobs')
    .option('--json', 'print { url } as JSON once listening')
    .addHelpText('after', `
Examples:
  kiln gateway --listen 127.0.0.1:5000
  skopeo copy --src-tls-verify=false docker://127.0.0.1:5000/hpc/app:v1 oci:./app:v1
  kiln gateway --listen 0.0.0.0:5443 --tls-cert cert.pem --tls-key key.pem --users users.yaml --no-anonymous-read
See docs/gateway.md for auth, TLS and mirror configuration.`)
    .action(async (opts: GatewayOptions) => {
      const config = (await ctx.config()).gateway
      const { host, port } = splitHostPort(opts.listen ?? config.listen)
      const certFile = opts.tlsCert ?? config.tls?.cert
      const keyFile = opts.tlsKey ?? config.tls?.key
      if ((certFile === undefined) !== (keyFile === undefined)) {
        throw new CliError('--tls-cert and --tls-key go together', { exitCode: EXIT.usage })
      }
      const insecure = opts.insecureListen === true || config.insecureListen
      if (certFile === undefined && !isLoopback(host) && !insecure) {
        throw new CliError(`refusing plain HTTP on ${host}: passwords and tokens would cross the network in clear`, {
          exitCode: EXIT.usage,
          hint: 'give --tls-cert and --tls-key (docs/gateway.md shows how to make them), listen on 127.0.0.1, or pass --insecure-listen'
        })
      }
      if (opts.anonymousPush === true && !isLoopback(host)) {
        throw new CliError('--anonymous-push is only allowed on a loopback address', { exitCode: EXIT.usage })
      }
      const { join } = await import('node:path')
      const { existsSync } = await import('node:fs')
      const { readFile } = await import('node:fs/promises')
      const { createGateway, readUsersFile } = await import('../../gateway/index.ts')
      const store = await ctx.store()
      const logger = await ctx.logger()
      const defaultUsers = join(store.root, 'gateway', 'users.yaml')
      const usersFile = opts.users ?? (existsSync(defaultUsers) ? defaultUsers : undefined)
      const users = usersFile === undefined ? [] : await readUsersFile(usersFile)
      const anonymousRead = opts.anonymousRead ?? config.anonymousRead
      const gw = createGateway({
        store: store.content,
        refs: store.refs,
        db: store.db,
        uploadDir: join(store.root, 'gateway', 'uploads'),
        logger: logger.child({ module: 'gateway' }),
        deleteEnabled: opts.deleteEnabled === true || config.deleteEnabled,
        ...(opts.anonymousPush === true ? {} : { auth: { anonymousRead, users } })
      })
      ctx.onClose(async () => { await gw.close() })
      const tls = certFile === undefined || keyFile === undefined ? undefined : { cert: await readFile(certFile), key: await readFile(keyFile) }
      const { url } = await gw.listen(host, port, tls === undefined ? {} : { tls })
      if (opts.json === true) ctx.out.json({ url })
      else {
        ctx.out.line(`gateway listening on ${url} (${users.length} user${users.length === 1 ? '' : 's'}, anonymous ${opts.anonymousPush === true ? 'push' : anonymousRead ? 'read' : 'none'})`)
        const hostPort = url.replace(/^https?:\/\//, '')
        ctx.out.line(`try: skopeo list-tags ${tls === undefined ? '--tls-verify=false ' : ''}docker://${hostPort}/REPO`)
      }
      await new Promise<void>(resolve => {
        process.once('SIGINT', resolve)
        process.once('SIGTERM', resolve)
      })
    })

  gateway.command('hash-password')
    .description('read a password on stdin and print its hash for the gateway users file')
    .addHelpText('after', '\nExample:\n  printf %s "$PASS" | kiln gateway hash-password')
    .action(async () => {
      const { hashPassword } = await import('../../gateway/index.ts')
      const password = await readSecret()
      if (password === '') throw new CliError('empty password on stdin', { exitCode: EXIT.usage })
      ctx.out.line(await hashPassword(password))
    })
}
