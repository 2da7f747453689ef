/**
 * What every long-running node that decides whom to trust loads (agent,
 * gateway): the trust policy, a broken one being a NodeSettingError with a
 * hint, and this node's certificates, unreadable ones skipped with a
 * warning (src/trust).
 */
import type { Logger } from 'pino'
import type { KilnConfig } from '../config/index.ts'
import type { TrustPolicy } from '../trust/index.ts'
import { NodeSettingError } from './errors.ts'

export interface NodeTrust {
  policy: TrustPolicy
  /** This node's membership certificates, presented with what it signs. */
  certs: unknown[]
}

export async function loadNodeTrust (config: KilnConfig, dataDir: string, self: string, log: Logger): Promise<NodeTrust> {
  const { loadTrustPolicy, loadCertificates } = await import('../trust/index.ts')
  let policy
  try {
    policy = await loadTrustPolicy(dataDir, { self, config: config.trust })
  } catch (err) {
    throw new NodeSettingError((err as Error).message, { cause: err, hint: 'fix the trust policy (kiln trust ls shows it)' })
  }
  const certs = await loadCertificates(dataDir, self, (file, reason) => { log.warn({ file, reason }, 'certificate skipped') })
  return { policy, certs }
}
