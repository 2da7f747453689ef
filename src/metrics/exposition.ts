/**
 * Writing Prometheus text format 0.0.4: names, escaping and number formatting.
 * The grammar: https://prometheus.io/docs/instrumenting/exposition_formats/#text-format-details
 */
import { InvalidMetricNameError } from './errors.ts'

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

export function checkMetricName (name: string): void {
  if (!METRIC_NAME.test(name)) throw new InvalidMetricNameError(`invalid metric name ${JSON.stringify(name)}: must match ${METRIC_NAME.source}`)
}

export function checkLabelName (name: string): void {
  if (!LABEL_NAME.test(name) || name.startsWith('__')) throw new InvalidMetricNameError(`invalid label name ${JSON.stringify(name)}: must match ${LABEL_NAME.source} and not start with __`)
}

/** HELP text: backslash and line feed are escaped. */
export function escapeHelp (text: string): string {
  return text.replaceAll('\\', '\\\\').replaceAll('\n', '\\n')
}

/** Label values: backslash, double quote and line feed are escaped. */
export function escapeLabelValue (value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')
}

/** A sample value: Go's ParseFloat spellings for the special values. */
export function formatValue (value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Infinity) return '+Inf'
  if (value === -Infinity) return '-Inf'
  return String(value)
}

/** `{a="1",b="2"}`, or '' with no labels. Pairs are written in the order given. */
export function formatLabels (pairs: ReadonlyArray<readonly [string, string]>): string {
  if (pairs.length === 0) return ''
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`
}

export function sampleLine (name: string, pairs: ReadonlyArray<readonly [string, string]>, value: number): string {
  return `${name}${formatLabels(pairs)} ${formatValue(value)}`
}
