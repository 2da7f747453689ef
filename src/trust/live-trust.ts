/**
 * Live trust: the trust policy and this node's certificates of a data dir,
 * kept current while the node runs, so that `kiln trust add-peer|add-root|
 * add-cert` take effect without a restart. One LiveTrust serves every
 * service of a process (agent, gateway, `kiln up`'s both).
 *
 * Terms: the *fingerprint* is what a cheap check compares: the stat (inode,
 * size, mtime) of trust.yaml and the mtime of the certificate directory,
 * which every `saveCertificate` changes (it renames a file into it).
 *
 * Contract: before each decision of `policy.allows` the fingerprint is
 * checked (two stats, one check at a time) and, when it changed, the policy
 * and certificates are read again. `certs` is one array whose contents are
 * replaced in place on a reload, so that whoever holds it presents the
 * current certificates. A reload that fails (a trust.yaml that does not
 * parse) keeps what is in force and is reported through `onError`.
 *
 * @example
 * ```ts
 * const trust = await loadLiveTrust(dataDir, { self, config: config.trust, onReload: (what) => log.info(what, 'trust reloaded') })
 * startAgent({ ..., jobs: { policy: trust.policy, certs: trust.certs } })
 * process.on('SIGHUP', () => { void trust.reload() })
 * ```
 */
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { loadCertificates } from './certificates.ts'
import { CERTS_DIR, TRUST_DIR } from './constants.ts'
import { loadTrustPolicy, policyPath } from './policy-file.ts'
import type { ConfigTrust } from './policy-file.ts'
import type { TrustPolicy } from './policy.ts'

export interface LiveTrustInit {
  /** This node's peer id: trusted in every role, and the subject of its certificates. */
  self: string
  /** kiln.yaml's trust section, merged into trust.yaml's policy. */
  config?: ConfigTrust
  /** After each reload: the policy's size and the certificates presented. */
  onReload?: (summary: { roots: number, peers: number, certificates: number }) => void
  /** A reload that failed; the policy in force is kept. */
  onError?: (err: Error) => void
  /** A certificate file skipped (unreadable, expired, for another peer). */
  onSkipCertificate?: (file: string, reason: string) => void
}

export interface LiveTrust {
  /** Always the current policy: `config` reads the one in force, `allows` checks the files first. */
  readonly policy: TrustPolicy
  /** This node's certificates; the same array, its contents replaced on a reload. */
  readonly certs: unknown[]
  /**
   * Reads the files again now, whatever the fingerprint says (SIGHUP);
   * given `config`, kiln.yaml's trust section is replaced too. Rejects when
   * the policy does not load, keeping the one in force.
   */
  reload: (config?: ConfigTrust) => Promise<void>
  /** Reloads if the files changed since the last read; never rejects. */
  refresh: () => Promise<void>
}

async function fingerprint (dataDir: string): Promise<string> {
  const [policy, certs] = await Promise.all([
    stat(policyPath(dataDir)).then(s => `${s.ino}:${s.size}:${s.mtimeMs}`, () => '-'),
    stat(join(dataDir, TRUST_DIR, CERTS_DIR)).then(s => `${s.ino}:${s.mtimeMs}`, () => '-')
  ])
  return `${policy}/${certs}`
}

/** Loads the policy and certificates of `dataDir`; throws PolicyFileError when the policy does not load. */
export async function loadLiveTrust (dataDir: string, init: LiveTrustInit): Promise<LiveTrust> {
  let config = init.config
  let seen = await fingerprint(dataDir)
  let current = await loadTrustPolicy(dataDir, { self: init.self, ...(config !== undefined ? { config } : {}) })
  const certs: unknown[] = await loadCertificates(dataDir, init.self, init.onSkipCertificate)
  let checking: Promise<void> | undefined

  const read = async (): Promise<void> => {
    // Taken before reading: a change made while reading is seen by the next check.
    const next = await fingerprint(dataDir)
    const policy = await loadTrustPolicy(dataDir, { self: init.self, ...(config !== undefined ? { config } : {}) })
    const fresh = await loadCertificates(dataDir, init.self, init.onSkipCertificate)
    current = policy
    certs.splice(0, certs.length, ...fresh)
    seen = next
    init.onReload?.({ roots: policy.config.roots.length, peers: policy.config.peers.length, certificates: certs.length })
  }
  const refresh = async (): Promise<void> => {
    checking ??= (async () => {
      try {
        if (await fingerprint(dataDir) !== seen) await read()
      } catch (err) {
        // Not again until the files change once more: a broken file is reported once, not per decision.
        seen = await fingerprint(dataDir)
        init.onError?.(err as Error)
      } finally {
        checking = undefined
      }
    })()
    await checking
  }
  const policy: TrustPolicy = {
    get config () { return current.config },
    allows: async (peerId, role, presented, options) => {
      await refresh()
      return await current.allows(peerId, role, presented, options)
    }
  }
  return {
    policy,
    certs,
    reload: async (next) => {
      const before = config
      if (next !== undefined) config = next
      try {
        await read()
      } catch (err) {
        config = before
        throw err
      }
    },
    refresh
  }
}
