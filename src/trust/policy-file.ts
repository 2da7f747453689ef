/**
 * trust.yaml: the policy on disk, `<dataDir>/trust/trust.yaml`, mode 0600.
 * Missing file = empty policy (trust only yourself). Edits go through
 * read-modify-write with an atomic rename; they rewrite the file, so
 * comments added by hand are not kept.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseDocument, stringify } from 'yaml'
import { PeerIdString } from '../../protocols/envelope.ts'
import type { Role } from '../../protocols/federation.ts'
import { POLICY_FILE, TRUST_DIR } from './constants.ts'
import { PolicyFileError } from './errors.ts'
import { PeerEntry, PolicyConfig, RootEntry, createTrustPolicy } from './policy.ts'
import type { TrustPolicy, TrustPolicyInit } from './policy.ts'
import { readRootPublicFile } from './root.ts'

const MAX_POLICY_BYTES = 4 * 1024 * 1024

const HEADER = `# kiln trust policy: whom this node builds for and whose results it accepts.
# See docs/federation.md. Edit with \`kiln trust add-root\` / \`kiln trust add-peer\`, or by hand.
`

export function policyPath (dataDir: string): string {
  return join(dataDir, TRUST_DIR, POLICY_FILE)
}

export async function readPolicyFile (dataDir: string): Promise<PolicyConfig> {
  const path = policyPath(dataDir)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return PolicyConfig.parse({ version: 1 })
    throw err
  }
  if (text.length > MAX_POLICY_BYTES) throw new PolicyFileError(`${path} is larger than ${MAX_POLICY_BYTES} bytes`)
  const doc = parseDocument(text, { uniqueKeys: true })
  if (doc.errors.length > 0) throw new PolicyFileError(`${path}: ${doc.errors[0]?.message ?? 'invalid YAML'}`)
  const parsed = PolicyConfig.safeParse(doc.toJS() ?? { version: 1 })
  if (!parsed.success) throw new PolicyFileError(`${path}: ${parsed.error.issues.map(i => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`)
  return parsed.data
}

export async function writePolicyFile (dataDir: string, config: PolicyConfig): Promise<string> {
  const path = policyPath(dataDir)
  const valid = PolicyConfig.parse(config)
  await mkdir(join(dataDir, TRUST_DIR), { recursive: true, mode: 0o700 })
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, HEADER + stringify(valid), { mode: 0o600 })
  await rename(tmp, path)
  return path
}

/** Trust entries from kiln.yaml's `trust` section; a root `key` may be a peer id or the path of a root.pub.yaml. */
export interface ConfigTrust {
  roots?: ReadonlyArray<{ key: string, roles: readonly Role[] }>
  peers?: ReadonlyArray<{ peer: string, roles: readonly Role[] }>
}

/**
 * The policy a node runs with: trust.yaml merged with kiln.yaml's `trust`
 * section. Throws PolicyFileError naming the entry that is wrong.
 */
export async function loadTrustPolicy (dataDir: string, init: TrustPolicyInit & { config?: ConfigTrust } = {}): Promise<TrustPolicy> {
  const policy = await readPolicyFile(dataDir)
  for (const r of init.config?.roots ?? []) {
    let entry: RootEntry
    if (PeerIdString.safeParse(r.key).success) entry = { key: r.key, roles: [...r.roles] }
    else {
      try {
        const pub = await readRootPublicFile(r.key)
        entry = { key: pub.key, institution: pub.institution, roles: [...r.roles] }
      } catch (err) {
        throw new PolicyFileError(`kiln.yaml trust.roots: ${(err as Error).message}`)
      }
    }
    const ok = RootEntry.safeParse(entry)
    if (!ok.success) throw new PolicyFileError(`kiln.yaml trust.roots: ${r.key}: ${ok.error.issues.map(i => i.message).join('; ')}`)
    policy.roots.push(ok.data)
  }
  for (const p of init.config?.peers ?? []) {
    const ok = PeerEntry.safeParse({ peer: p.peer, roles: [...p.roles] })
    if (!ok.success) throw new PolicyFileError(`kiln.yaml trust.peers: ${p.peer}: ${ok.error.issues.map(i => i.message).join('; ')}`)
    policy.peers.push(ok.data)
  }
  return createTrustPolicy(policy, init)
}

/** Adds a root, or merges roles/institution into the entry for the same key. */
export async function addRoot (dataDir: string, entry: RootEntry): Promise<PolicyConfig> {
  const root = RootEntry.parse(entry)
  const config = await readPolicyFile(dataDir)
  const existing = config.roots.find(r => r.key === root.key)
  if (existing === undefined) config.roots.push(root)
  else {
    existing.roles = [...new Set([...existing.roles, ...root.roles])]
    if (root.institution !== undefined) existing.institution = root.institution
    if (root.note !== undefined) existing.note = root.note
  }
  await writePolicyFile(dataDir, config)
  return config
}

/** Adds a single trusted peer, or merges roles into its entry. */
export async function addPeer (dataDir: string, entry: PeerEntry): Promise<PolicyConfig> {
  const peer = PeerEntry.parse(entry)
  const config = await readPolicyFile(dataDir)
  const existing = config.peers.find(p => p.peer === peer.peer)
  if (existing === undefined) config.peers.push(peer)
  else existing.roles = [...new Set([...existing.roles, ...peer.roles])]
  await writePolicyFile(dataDir, config)
  return config
}
