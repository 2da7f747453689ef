/**
 * Metrics: counters, gauges and histograms with labels, exposed in the
 * Prometheus text format at an optional HTTP endpoint (`metrics.listen` in
 * kiln.yaml). Every name kiln exposes is defined in ./names.ts; modules take
 * a `Metrics` handle and call inc/set/observe. With no `metrics.listen`, the
 * handle is a no-op and nothing is collected.
 *
 * @example
 * ```ts
 * const { metrics, close } = await startMetrics(config.metrics)   // no-op handle if not configured
 * metrics.inc('kiln_jobs_total', { state: 'received' })
 * metrics.observe('kiln_build_duration_seconds', { platform: 'linux/amd64', outcome: 'succeeded' }, 42.5)
 * metrics.onCollect(async () => { metrics.set('kiln_store_bytes', {}, await storeBytes()) })
 * // curl http://127.0.0.1:9464/metrics
 * await close()
 * ```
 */
import { createMetrics } from './metrics.ts'
import type { Metrics } from './metrics.ts'
import { startMetricsServer } from './server.ts'
import type { MetricsServer } from './server.ts'

export { createMetrics } from './metrics.ts'
export type { Metrics, MetricsInit } from './metrics.ts'
export { startMetricsServer, splitHostPort } from './server.ts'
export type { MetricsServer, MetricsServerInit } from './server.ts'
export { createRegistry } from './registry.ts'
export type { CollectHook, Labels, MetricDefinition, MetricType, Registry } from './registry.ts'
export { KILN_METRICS } from './names.ts'
export type { CounterName, GaugeName, HistogramName, KilnMetricName, LabelsOf } from './names.ts'
export * from './errors.ts'
export { CONTENT_TYPE, METRICS_PATH } from './constants.ts'

export interface RunningMetrics {
  metrics: Metrics
  /** The endpoint, when one was started. */
  server?: MetricsServer
  close: () => Promise<void>
}

/** From the `metrics` section of kiln.yaml: an endpoint and a live handle if `listen` is set, else the no-op handle. */
export async function startMetrics (section: { listen?: string | undefined }): Promise<RunningMetrics> {
  if (section.listen === undefined) return { metrics: createMetrics({ enabled: false }), close: async () => {} }
  const metrics = createMetrics()
  const server = await startMetricsServer({ metrics, listen: section.listen })
  return { metrics, server, close: server.close }
}
