/**
 * What every long-running node that decides whom to trust loads (agent,
 * gateway): the live trust of its data dir (src/trust/live-trust.ts), the
 * policy and this node's certificates, read again when `kiln trust`
 * changes their files, so that no change needs a restart. A broken policy
 * at start is a NodeSettingError with a hint; a broken one later is logged
 * and the policy in force is kept. `kiln up` loads it once and hands the
 * same one to its agent and gateway.
 */
import type { Logger } from 'pino'
import type { KilnConfig } from '../config/index.ts'
import type { LiveTrust } from '../trust/index.ts'
import { NodeSettingError } from './errors.ts'

/** The live trust of a node's data dir: `policy` and `certs` stay current, `reload` is SIGHUP's. */
export type NodeTrust = LiveTrust

export async function loadNodeTrust (config: KilnConfig, dataDir: string, self: string, log: Logger): Promise<NodeTrust> {
  const { loadLiveTrust } = await import('../trust/index.ts')
  try {
    return await loadLiveTrust(dataDir, {
      self,
      config: config.trust,
      onSkipCertificate: (file, reason) => { log.warn({ file, reason }, 'certificate skipped') },
      onReload: (summary) => { log.info(summary, 'trust policy and certificates read again') },
      onError: (err) => { log.error({ err: err.message }, 'the trust files changed but do not load: the trust in force is kept (kiln trust ls shows the problem)') }
    })
  } catch (err) {
    throw new NodeSettingError((err as Error).message, { cause: err, hint: 'fix the trust policy (kiln trust ls shows it)' })
  }
}
