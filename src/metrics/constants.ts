/**
 * Limits and fixed strings of the metrics module. The exposition format is
 * Prometheus text format 0.0.4:
 * https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
 */

/** Content-Type of a text-format scrape (exposition formats, "Basic info"). */
export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/** Where the HTTP endpoint serves the scrape. */
export const METRICS_PATH = '/metrics'

/** Histogram buckets in seconds for durations from a DHT lookup to a long build. */
export const DURATION_BUCKETS: readonly number[] = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200]

/**
 * Most label combinations one metric keeps. Labels such as `peer` grow with
 * the network; past this, new combinations are folded into one extra series whose
 * labels all read "other", so a scrape stays bounded.
 */
export const MAX_SERIES_PER_METRIC = 1000

/** Value every label takes in the overflow series (see MAX_SERIES_PER_METRIC). */
export const OVERFLOW_LABEL_VALUE = 'other'

/** Longest the endpoint waits for collect hooks (store size...) before answering with what it has. */
export const COLLECT_TIMEOUT_MS = 5_000
