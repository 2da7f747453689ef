import { Option } from 'commander'
import type { Command } from 'commander'
import type { CliContext } from '../context.ts'
import { CliError } from '../errors.ts'
import { EXIT } from '../exit-codes.ts'
import type * as TrustModule from '../../trust/index.ts'
import { KeyFileError, PolicyFileError } from '../../trust/errors.ts'
import type { ErrorClass } from '../../util/error-class.ts'
import { isErrorOf } from '../../util/error-class.ts'

/** Classes of the files and values the user gave wrong; zod's joins when the trust module (which loads zod anyway) does. */
const usageErrors: ErrorClass[] = [PolicyFileError, KeyFileError, RangeError]

async function trust (): Promise<typeof TrustModule> {
  const [module, { ZodError }] = await Promise.all([import('../../trust/index.ts'), import('zod')])
  if (!usageErrors.includes(ZodError)) usageErrors.push(ZodError)
  return module
}

/** Errors of src/trust as the person at the terminal should see them. */
function explain (err: unknown, hint?: string): never {
  if (err instanceof CliError) throw err
  const message = err instanceof Error ? err.message : String(err)
  const usage = usageErrors.some(cls => isErrorOf(err, cls))
  throw new CliError(message, { exitCode: usage ? EXIT.usage : EXIT.verification, cause: err, ...(hint !== undefined ? { hint } : {}) })
}

async function parseRoles (text: string): Promise<Array<'builder' | 'requester' | 'gateway'>> {
  const { Role } = await trust()
  const roles = text.split(',').map(s => s.trim()).filter(s => s !== '')
  const out = roles.map(r => {
    const ok = Role.safeParse(r)
    if (!ok.success) throw new CliError(`unknown role ${JSON.stringify(r)}`, { exitCode: EXIT.usage, hint: 'roles are builder, requester, gateway' })
    return ok.data
  })
  if (out.length === 0) throw new CliError('no role given', { exitCode: EXIT.usage, hint: 'e.g. --roles builder,requester' })
  return [...new Set(out)]
}

/** `--roles` is documented; `--role`, hidden, is the same flag (the one given wins over the default). */
interface RolesFlags { roles?: string, role?: string }

function rolesOf (opts: RolesFlags): string {
  const text = opts.role ?? opts.roles
  if (text === undefined) throw new CliError('no role given', { exitCode: EXIT.usage, hint: 'e.g. --roles builder,requester' })
  return text
}

export function register (program: Command, ctx: CliContext): void {
  const cmd = program.command('trust')
    .description('federation: institution root keys, membership certificates, and whom this node trusts (docs/federation.md)')
    .addHelpText('after', `
Examples:
  kiln trust init-root --institution uni-a          create this institution's root key
  kiln trust issue --role builder 12D3KooW... > builder.cert.json
  kiln trust add-cert builder.cert.json             (on the builder) present it from now on
  kiln trust add-root uni-b.root.pub.yaml --roles builder
  kiln trust ls`)

  cmd.command('init-root')
    .description('create the institution root key (<data-dir>/trust/root.key, 0600) and trust it here for every role')
    .option('--institution <name>', 'institution name (default: agent.institution from kiln.yaml)')
    .option('--json', 'print JSON: { key, institution, keyPath, publicPath }')
    .addHelpText('after', '\nExample:\n  kiln trust init-root --institution uni-a\n  # then give <data-dir>/trust/root.pub.yaml to federated sites; keep root.key private')
    .action(async (opts: { institution?: string, json?: boolean }) => {
      const { initRoot } = await trust()
      const institution = opts.institution ?? (await ctx.config()).agent.institution
      if (institution === '') throw new CliError('no institution name', { exitCode: EXIT.usage, hint: 'pass --institution NAME or set agent.institution in kiln.yaml' })
      const r = await initRoot(await ctx.dataDir(), institution).catch(err => explain(err, 'a root key exists already; `kiln trust ls` shows it'))
      if (opts.json === true) { ctx.out.json(r); return }
      ctx.out.line(`root key:    ${r.key}`)
      ctx.out.line(`institution: ${r.institution}`)
      ctx.out.line(`private key: ${r.keyPath} (0600: back it up, never copy it to a build node)`)
      ctx.out.line(`public file: ${r.publicPath} (give this to federated sites: kiln trust add-root FILE)`)
    })

  cmd.command('issue')
    .description('sign a membership certificate for a peer with this institution\'s root key; prints it (JSON)')
    .argument('<peer>', 'the subject\'s peer id (`kiln key show` on that node), or "self"')
    .option('--roles <roles>', 'comma-separated roles: builder, requester, gateway (required; --role is the same flag)')
    .addOption(new Option('--role <roles>').hideHelp())
    .option('--expires <duration>', 'validity, e.g. 30d, 12h (at most 730d)', '90d')
    .option('-o, --output <file>', 'write the certificate to a file instead of stdout')
    .addHelpText('after', '\nExample:\n  kiln trust issue --roles builder,requester --expires 30d 12D3KooW... -o node7.cert.json')
    .action(async (peerArg: string, opts: RolesFlags & { expires: string, output?: string }) => {
      const t = await trust()
      const dataDir = await ctx.dataDir()
      const roles = await parseRoles(rolesOf(opts))
      let ttlMs: number
      try { ttlMs = t.parseDuration(opts.expires) } catch (err) { explain(err) }
      const self = (await ctx.identity()).peerId.toString()
      const subject = peerArg === 'self' ? self : peerArg
      try { t.publicKeyFromPeerId(subject) } catch (err) { explain(err, 'the subject is the peer id printed by `kiln key show` on that node') }
      const root = await t.loadRoot(dataDir).catch(err => explain(err, 'create a root first: kiln trust init-root --institution NAME'))
      const cert = await t.issueCertificate(root.key, { subject, roles, institution: root.institution, ttlMs }).catch(err => explain(err))
      const { canonicalJson } = await import('../../../protocols/envelope.ts')
      const text = canonicalJson(cert) + '\n'
      if (opts.output !== undefined) {
        const { writeFile } = await import('node:fs/promises')
        await writeFile(opts.output, text, { mode: 0o644 })
        ctx.out.note(`certificate for ${subject} (${roles.join(',')}, ${root.institution}) written to ${opts.output}, valid until ${new Date(cert.expiresAt).toISOString()}`)
      } else {
        process.stdout.write(text)
      }
      if (subject === self) {
        const { path } = await t.saveCertificate(dataDir, cert)
        ctx.out.note(`this node's own certificate, stored in ${path}`)
      }
    })

  cmd.command('add-cert')
    .description('store a certificate issued for this node, so that it presents it with its jobs, offers and results')
    .argument('<file>', 'certificate file from `kiln trust issue` ("-" for stdin)')
    .addHelpText('after', '\nExample:\n  kiln trust add-cert node7.cert.json')
    .action(async (file: string) => {
      const t = await trust()
      const { readFile } = await import('node:fs/promises')
      const text = file === '-' ? await new Response(process.stdin as unknown as ReadableStream).text() : await readFile(file, 'utf8').catch(err => explain(err))
      let value: unknown
      try { value = JSON.parse(text) } catch (err) { throw new CliError(`${file} is not JSON: ${(err as Error).message}`, { exitCode: EXIT.usage }) }
      const cert = await t.verifyCertificate(value).catch(err => explain(err))
      const self = (await ctx.identity()).peerId.toString()
      if (cert.payload.subject !== self) throw new CliError(`the certificate is for ${cert.payload.subject}, this node is ${self}`, { exitCode: EXIT.verification, hint: 'issue it for the peer id that `kiln key show` prints on this node' })
      const { path } = await t.saveCertificate(await ctx.dataDir(), cert)
      ctx.out.line(`stored ${path}: ${cert.payload.roles.join(',')} of ${cert.payload.institution} until ${new Date(cert.expiresAt).toISOString()}`)
    })

  cmd.command('add-root')
    .description('trust an institution\'s root key for some roles')
    .argument('<file-or-key>', 'a root.pub.yaml from `kiln trust init-root`, or the root key\'s peer id')
    .option('--roles <roles>', 'roles accepted from this root\'s certificates (--role is the same flag)', 'builder')
    .addOption(new Option('--role <roles>').hideHelp())
    .option('--institution <name>', 'require certificates to name this institution (taken from the file when given one)')
    .option('--note <text>', 'a note for `kiln trust ls`')
    .addHelpText('after', '\nExamples:\n  kiln trust add-root uni-b.root.pub.yaml --roles builder\n  kiln trust add-root 12D3KooW... --institution uni-b --roles builder,requester')
    .action(async (arg: string, opts: RolesFlags & { institution?: string, note?: string }) => {
      const t = await trust()
      const roles = await parseRoles(rolesOf(opts))
      const { PeerIdString } = await import('../../../protocols/envelope.ts')
      let key = arg
      let institution = opts.institution
      if (!PeerIdString.safeParse(arg).success) {
        const pub = await t.readRootPublicFile(arg).catch(err => explain(err, 'pass a root.pub.yaml file or a peer id (12D3KooW...)'))
        key = pub.key
        if (institution !== undefined && institution !== pub.institution) throw new CliError(`${arg} is the root of ${pub.institution}, not ${institution}`, { exitCode: EXIT.usage })
        institution = pub.institution
      }
      const entry = { key, roles, ...(institution !== undefined ? { institution } : {}), ...(opts.note !== undefined ? { note: opts.note } : {}) }
      await t.addRoot(await ctx.dataDir(), entry).catch(err => explain(err))
      ctx.out.line(`trusting root ${key}${institution !== undefined ? ` (${institution})` : ''} for ${roles.join(',')}`)
    })

  cmd.command('add-peer')
    .description('trust one peer directly for some roles, without a certificate')
    .argument('<peer>', 'peer id')
    .option('--roles <roles>', 'roles to trust it for (--role is the same flag)', 'builder')
    .addOption(new Option('--role <roles>').hideHelp())
    .option('--note <text>', 'a note for `kiln trust ls`')
    .addHelpText('after', '\nExample:\n  kiln trust add-peer 12D3KooW... --roles builder,requester --note "my laptop"')
    .action(async (peer: string, opts: RolesFlags & { note?: string }) => {
      const t = await trust()
      const roles = await parseRoles(rolesOf(opts))
      await t.addPeer(await ctx.dataDir(), { peer, roles, ...(opts.note !== undefined ? { note: opts.note } : {}) }).catch(err => explain(err))
      ctx.out.line(`trusting peer ${peer} for ${roles.join(',')}`)
    })

  cmd.command('ls')
    .description('show this node\'s trust policy, its own root and the certificates it presents')
    .option('--json', 'print JSON: { policyFile, self, open, roots, peers, deny, ownRoot, certificates }')
    .addHelpText('after', '\nExample:\n  kiln trust ls --json | jq \'.roots[].institution\'')
    .action(async (opts: { json?: boolean }) => {
      const t = await trust()
      const dataDir = await ctx.dataDir()
      const config = await ctx.config()
      const self = (await ctx.identity()).peerId.toString()
      const policy = await t.loadTrustPolicy(dataDir, { self, config: config.trust }).catch(err => explain(err))
      const ownRoot = await t.readRootPublicFile(t.rootPublicPath(dataDir)).then(p => ({ key: p.key, institution: p.institution }), () => null)
      const certs = (await t.loadCertificates(dataDir, self, (f, why) => { ctx.out.warn(`ignoring certificate ${f}: ${why}`) }))
        .map(c => ({ root: c.signer, institution: c.payload.institution, roles: c.payload.roles, expiresAt: new Date(c.expiresAt).toISOString() }))
      const { config: p } = policy
      if (opts.json === true) {
        ctx.out.json({ policyFile: t.policyPath(dataDir), self, open: p.open, roots: p.roots, peers: p.peers, deny: p.deny, ownRoot, certificates: certs })
        return
      }
      ctx.out.line(`policy: ${t.policyPath(dataDir)}${p.open ? '  (OPEN: trusts every peer)' : ''}`)
      ctx.out.line(`self:   ${self}`)
      if (ownRoot !== null) ctx.out.line(`own root: ${ownRoot.key} (${ownRoot.institution})`)
      const rows = [
        ...p.roots.map(r => ({ kind: 'root', id: r.key, institution: r.institution ?? '*', roles: r.roles.join(','), note: r.note ?? '' })),
        ...p.peers.map(e => ({ kind: 'peer', id: e.peer, institution: '', roles: e.roles.join(','), note: e.note ?? '' })),
        ...p.deny.map(d => ({ kind: 'deny', id: d, institution: '', roles: '', note: '' }))
      ]
      ctx.out.line('')
      if (rows.length === 0) ctx.out.line('trusts no one but itself (kiln trust add-root FILE | add-peer PEER)')
      else ctx.out.table(rows, [
        { header: 'KIND', value: r => r.kind }, { header: 'ID', value: r => r.id }, { header: 'INSTITUTION', value: r => r.institution },
        { header: 'ROLES', value: r => r.roles }, { header: 'NOTE', value: r => r.note }
      ])
      ctx.out.line('')
      if (certs.length === 0) ctx.out.line('presents no certificate')
      else ctx.out.table(certs, [
        { header: 'CERTIFIED BY', value: c => c.institution }, { header: 'ROOT', value: c => c.root },
        { header: 'ROLES', value: c => c.roles.join(',') }, { header: 'EXPIRES', value: c => c.expiresAt }
      ])
    })
}
