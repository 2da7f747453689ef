/**
 * Root emulation in the bwrap driver: what makes unmodified package
 * managers and user tools work as the node's unprivileged user.
 *
 * Terms:
 * - the filter: the seccomp program of ./seccomp.ts (chown, setuid and
 *   their kin succeed without taking effect).
 * - apt's sandbox user: apt drops to `_apt` for downloads and then checks
 *   that getuid() and getgid() changed, which a faked setuid cannot make
 *   true ("Could not switch group"). kiln therefore gives apt
 *   `APT::Sandbox::User "root"` (what Debian's own fakeroot and
 *   Charliecloud's root emulation do) through `APT_CONFIG`, naming a file in
 *   the step's private /dev: nothing is written into the root, so nothing
 *   reaches a layer. apt reads that file before /etc/apt, so a recipe's own
 *   apt configuration still wins, and a recipe that sets APT_CONFIG itself
 *   replaces kiln's.
 *
 * Both are handed to bwrap on inherited pipes (runProcess's `inputFds`),
 * the program with `--seccomp FD`, the file with `--ro-bind-data FD PATH`.
 */
import { rootEmulationFilter } from './seccomp.ts'

/** Where the step finds kiln's apt configuration (the step's private /dev, never a layer). */
export const APT_CONFIG_PATH = '/dev/.kiln/apt.conf'

const APT_CONF = 'APT::Sandbox::User "root";\n'

export interface BwrapRootEmulation {
  /** bwrap options, naming fds `firstFd`, `firstFd + 1`. */
  args: string[]
  /** Bytes for those fds, in order. */
  fds: Uint8Array[]
  /** Variables the step gets unless its own environment sets them. */
  env: Record<string, string>
}

export function bwrapRootEmulation (firstFd: number): BwrapRootEmulation {
  return {
    args: ['--seccomp', String(firstFd), '--ro-bind-data', String(firstFd + 1), APT_CONFIG_PATH],
    fds: [rootEmulationFilter(), Buffer.from(APT_CONF)],
    env: { APT_CONFIG: APT_CONFIG_PATH }
  }
}
