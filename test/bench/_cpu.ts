/** CPU time of other processes, for benches that report CPU seconds beside wall time (robust to other load). */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100

/** CPU seconds (user + system, all threads) a live process has used, from /proc/PID/stat; 0 where there is no /proc. */
export function cpuSeconds (pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${String(pid)}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
  } catch { return 0 }
}

/** CPU seconds of the waited-for children (cutime + cstime) in a copy of /proc/PID/stat taken by the process itself. */
export function childrenCpuSeconds (statFile: string): number {
  const fields = readFileSync(statFile, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS
}
