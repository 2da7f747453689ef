/**
 * The metrics endpoint of a node's services: at `listen` (HOST:PORT) when
 * given, else the no-op handle and no url (src/metrics).
 */
import type { Metrics } from '../metrics/index.ts'
import { MetricsAddressError } from '../metrics/errors.ts'
import { isErrorOf } from '../util/error-class.ts'
import { ListenError } from './errors.ts'

export interface NodeMetrics {
  metrics: Metrics
  /** http://HOST:PORT/metrics, when serving. */
  url?: string
  close: () => Promise<void>
}

/** Throws MetricsAddressError for a `listen` that is not HOST:PORT, ListenError when it cannot listen there. */
export async function startNodeMetrics (listen: string | undefined): Promise<NodeMetrics> {
  const { startMetrics } = await import('../metrics/index.ts')
  let running
  try {
    running = await startMetrics({ listen })
  } catch (err) {
    if (isErrorOf(err, MetricsAddressError)) throw err
    throw new ListenError((err as Error).message, { cause: err, hint: 'give --metrics-listen HOST:PORT with a free port, e.g. 127.0.0.1:9464' })
  }
  return { metrics: running.metrics, ...(running.server !== undefined ? { url: running.server.url } : {}), close: running.close }
}
