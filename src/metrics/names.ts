/**
 * Every metric kiln exposes, in one place: name, type, help and labels.
 * Other modules name them through the typed `Metrics` interface, so a typo
 * or a wrong label is a type error, not a silently empty graph.
 *
 * Label values are bounded by design: `state`, `outcome`, `kind` are small
 * enums; `peer` is a peer id and grows with the network, so the registry
 * folds series past MAX_SERIES_PER_METRIC into one "other" series.
 */
import { DURATION_BUCKETS } from './constants.ts'
import type { MetricType } from './registry.ts'

interface Spec { type: MetricType, help: string, labels: readonly string[], buckets?: readonly number[] }

export const KILN_METRICS = {
  kiln_jobs: { type: 'gauge', help: 'Jobs this node holds, by state (queued, building, ...).', labels: ['state'] },
  kiln_jobs_total: { type: 'counter', help: 'Jobs that reached each state since start (received, offered, awarded, succeeded, failed, cancelled).', labels: ['state'] },
  kiln_queue_length: { type: 'gauge', help: 'Jobs accepted and waiting for a build slot.', labels: [] },
  kiln_build_duration_seconds: { type: 'histogram', help: 'Wall time of builds, by platform and outcome (succeeded, failed, cancelled).', labels: ['platform', 'outcome'], buckets: DURATION_BUCKETS },
  kiln_bytes_served_total: { type: 'counter', help: 'Blob bytes sent to peers, by peer id.', labels: ['peer'] },
  kiln_bytes_fetched_total: { type: 'counter', help: 'Blob bytes received from peers, by peer id.', labels: ['peer'] },
  kiln_dht_lookups_total: { type: 'counter', help: 'DHT lookups, by kind (providers, record, peer) and outcome (found, not_found, error).', labels: ['kind', 'outcome'] },
  kiln_dht_lookup_duration_seconds: { type: 'histogram', help: 'Time DHT lookups took, by kind.', labels: ['kind'], buckets: DURATION_BUCKETS },
  kiln_store_bytes: { type: 'gauge', help: 'Bytes of complete blobs in the content store.', labels: [] },
  kiln_store_blobs: { type: 'gauge', help: 'Complete blobs in the content store.', labels: [] },
  kiln_store_quota_bytes: { type: 'gauge', help: 'The store quota in bytes (store.quota); 0 when unlimited.', labels: [] },
  kiln_store_evicted_bytes_total: { type: 'counter', help: 'Bytes evicted from the store to stay under its quota.', labels: [] },
  kiln_gateway_requests_total: { type: 'counter', help: 'OCI distribution API requests, by method and status code.', labels: ['method', 'status'] }
} as const satisfies Record<string, Spec>

export type KilnMetricName = keyof typeof KILN_METRICS

type NamesOf<T extends MetricType> = { [N in KilnMetricName]: typeof KILN_METRICS[N]['type'] extends T ? N : never }[KilnMetricName]

export type CounterName = NamesOf<'counter'>
export type GaugeName = NamesOf<'gauge'>
export type HistogramName = NamesOf<'histogram'>

/** The labels a metric takes: `{ state: string }` for kiln_jobs, `{}` for kiln_queue_length. */
export type LabelsOf<N extends KilnMetricName> = { readonly [L in typeof KILN_METRICS[N]['labels'][number]]: string }
