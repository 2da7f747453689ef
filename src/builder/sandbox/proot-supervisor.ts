/**
 * The host-side supervisor of one proot run. proot lets go of the processes
 * it traces when it dies (it does not set PTRACE_O_EXITKILL), and a process
 * let go runs on the host unconfined; proot also waits for every process it
 * traces, so a step's daemon would hold it. And proot ends as soon as it
 * knows of no process to trace, which can be before it has seen a child
 * that the kernel already attached to it (the parent was killed before
 * reporting the fork): that child is then let go too. So the supervisor
 * *reaps* with proot frozen:
 *
 * 1. SIGSTOP to proot: it can no longer end, nor let anyone go; a traced
 *    process that forks, or makes any traced call, waits for it;
 * 2. SIGKILL to every process whose TracerPid is proot, again for the ones
 *    not killed yet until none is left (a child forked meanwhile is traced
 *    from birth, so the next round finds it). A killed process stops at
 *    its exit event (proot traces those) or stays a zombie, waiting for the
 *    frozen proot: it can run no more code;
 * 3. SIGKILL to proot: what it traced is let go, only to finish dying.
 *
 * It reaps on SIGUSR1 (the step's wrapper: the step's command has ended;
 * the wrapper learns the supervisor's pid from KILN_SUPERVISOR, which the
 * step's own environment, set after, lacks), and on SIGTERM (kiln stops
 * the step: timeout, abort; or kiln died, through the parent-death signal),
 * after which it kills its whole process group, so that what proot started
 * before tracing it goes too. Any `setsid` or double-forked daemon is
 * traced, hence found. What it cannot stop: a step that kills proot itself
 * (same user) is let go; proot is no security boundary (docs/security.md).
 */
import { requireTool } from './ns-script.ts'
import { shq } from './host-tools.ts'

/** Rounds of killing before the supervisor gives up on processes that will not die (stuck in the kernel). */
const REAP_ROUNDS = 200

/** Environment variable through which the step's wrapper learns the supervisor's pid. */
export const SUPERVISOR_ENV = 'KILN_SUPERVISOR'

/**
 * `sh -c` arguments of the supervisor, to be followed by proot's argv. It
 * exits with proot's status, or is killed (SIGKILL) when stopped. It must
 * lead its own process group (runProcess starts it so).
 */
export function supervisorArgs (): string[] {
  const grep = shq(requireTool('grep'))
  const script = `p=
killed=' '
reap () {
  trap '' USR1 TERM HUP INT
  [ -n "$p" ] || return 0
  kill -STOP "$p" 2>/dev/null
  n=0
  while [ "$n" -lt ${REAP_ROUNDS} ]; do
    more=
    for s in $(${grep} -l "^TracerPid:[[:space:]]*$p\$" /proc/[0-9]*/status 2>/dev/null); do
      s=\${s#/proc/}; s=\${s%/status}
      case "$killed" in *" $s "*) continue ;; esac
      kill -KILL "$s" 2>/dev/null
      killed="$killed$s "
      more=1
    done
    [ -n "$more" ] || break
    n=$((n + 1))
  done
  kill -KILL "$p" 2>/dev/null
}
trap reap USR1
trap 'reap; kill -KILL 0' TERM HUP INT
# The shell's own notices (a job "Killed") must not mix into the step's stderr: only proot's reaches it.
# A background job's stdin is /dev/null unless redirected: proot gets the supervisor's own (kiln run -i) through fd 4.
exec 3>&2 2>/dev/null 4<&0
${SUPERVISOR_ENV}=$$ "$@" 2>&3 3>&- <&4 4<&- &
p=$!
while :; do wait "$p"; rc=$?; kill -0 "$p" 2>/dev/null || break; done
exit "$rc"`
  return [requireTool('sh'), '-c', script, 'kiln-proot-supervisor']
}
