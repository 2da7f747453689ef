/** A metric or label name that the exposition format does not allow. */
export class InvalidMetricNameError extends Error {
  static override readonly name = 'InvalidMetricNameError'
  override readonly name = InvalidMetricNameError.name
}

/** A metric registered twice, or used with labels it was not defined with. */
export class MetricDefinitionError extends Error {
  static override readonly name = 'MetricDefinitionError'
  override readonly name = MetricDefinitionError.name
}

/** The metrics endpoint could not listen on the address it was given. */
export class MetricsListenError extends Error {
  static override readonly name: string = 'MetricsListenError'
  override readonly name: string = MetricsListenError.name
}

/** The metrics address is not HOST:PORT: a usage error, where a MetricsListenError alone is the network's. */
export class MetricsAddressError extends MetricsListenError {
  static override readonly name: string = 'MetricsAddressError'
  override readonly name: string = MetricsAddressError.name
}
