/** A metric or label name that the exposition format does not allow. */
export class InvalidMetricNameError extends Error {
  override readonly name = 'InvalidMetricNameError'
}

/** A metric registered twice, or used with labels it was not defined with. */
export class MetricDefinitionError extends Error {
  override readonly name = 'MetricDefinitionError'
}

/** The metrics endpoint could not listen on the address it was given. */
export class MetricsListenError extends Error {
  override readonly name = 'MetricsListenError'
}
