/**
 * The `Metrics` handle other modules hold: kiln's metric names, typed, over
 * a registry; or a no-op when metrics are disabled, so callers never check.
 */
import { KILN_METRICS } from './names.ts'
import type { CounterName, GaugeName, HistogramName, KilnMetricName, LabelsOf } from './names.ts'
import { createRegistry } from './registry.ts'
import type { CollectHook, Registry } from './registry.ts'

export interface Metrics {
  /** False for the no-op handle: skip work done only to compute a metric. */
  readonly enabled: boolean
  /** Adds value (default 1) to a counter. */
  inc: <N extends CounterName>(name: N, labels: LabelsOf<N>, value?: number) => void
  /** Sets a gauge. */
  set: <N extends GaugeName>(name: N, labels: LabelsOf<N>, value: number) => void
  /** Records an observation (seconds, for durations). */
  observe: <N extends HistogramName>(name: N, labels: LabelsOf<N>, value: number) => void
  /** Runs hook before each scrape (to set gauges such as store size); returns its remover. */
  onCollect: (hook: CollectHook) => () => void
  /** The scrape: Prometheus text format. '' when disabled. */
  render: () => Promise<string>
}

export interface MetricsInit {
  /** Default true. False gives a handle whose calls do nothing. */
  enabled?: boolean
  /** A registry to define kiln's metrics in; default a new one. */
  registry?: Registry
}

const NOOP: Metrics = {
  enabled: false,
  inc: () => {},
  set: () => {},
  observe: () => {},
  onCollect: () => () => {},
  render: async () => ''
}

export function createMetrics (init: MetricsInit = {}): Metrics {
  if (init.enabled === false) return NOOP
  const registry = init.registry ?? createRegistry()
  for (const name of Object.keys(KILN_METRICS) as KilnMetricName[]) {
    const spec: { type: 'counter' | 'gauge' | 'histogram', help: string, labels: readonly string[], buckets?: readonly number[] } = KILN_METRICS[name]
    registry.define({ name, type: spec.type, help: spec.help, labels: spec.labels, ...(spec.buckets !== undefined ? { buckets: spec.buckets } : {}) })
  }
  return {
    enabled: true,
    inc: (name, labels, value) => { registry.inc(name, labels, value) },
    set: (name, labels, value) => { registry.set(name, labels, value) },
    observe: (name, labels, value) => { registry.observe(name, labels, value) },
    onCollect: hook => registry.onCollect(hook),
    render: registry.render
  }
}
