/**
 * Mirror mode: the gateway as a registry mirror for containerd, CRI-O and
 * podman. Which upstream registry a request is for comes from:
 * - containerd (hosts.toml): `/v2/library/busybox/manifests/latest?ns=docker.io`,
 *   the `ns` query parameter; the repository is looked up locally as it is
 *   (a local tag wins), then on the peer network, then upstream;
 * - podman/CRI-O (registries.conf `[[registry.mirror]] location =
 *   "gw:5000/docker.io"`): a path prefix, repository `docker.io/library/busybox`.
 * A namespace with a port (`localhost:5001`) has the prefix `localhost-5001`.
 */
import { NAME_RE } from './constants.ts'

const NS_RE = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$/

/** The repository path prefix for a registry namespace, or undefined if `ns` is not a host[:port]. */
export function mirrorPrefix (ns: string): string | undefined {
  const lower = ns.toLowerCase()
  if (!NS_RE.test(lower)) return undefined
  const prefix = lower.replace(':', '-')
  return NAME_RE.test(prefix) ? prefix : undefined
}

/** Splits `docker.io/library/busybox` into the prefix and the upstream repository, given the configured prefixes. */
export function splitMirrored (repository: string, prefixes: Iterable<string>): { prefix: string, upstreamRepository: string } | undefined {
  for (const prefix of prefixes) {
    if (repository.startsWith(`${prefix}/`)) return { prefix, upstreamRepository: repository.slice(prefix.length + 1) }
  }
  return undefined
}
