/** What `kiln` exit statuses mean; scripts may rely on these. */
export const EXIT = {
  ok: 0,
  /** Something failed that is not one of the cases below. */
  failure: 1,
  /** Bad command line, config or input file. */
  usage: 2,
  /** The image, blob, job or peer asked for does not exist. */
  notFound: 3,
  /** A digest, signature or trust check failed. */
  verification: 4,
  /** A build step failed. */
  buildFailed: 5,
  /** The network or a peer could not be reached in time. */
  network: 6
} as const

export type ExitCode = typeof EXIT[keyof typeof EXIT]
