/**
 * git: the builder runs the host's `git` for `ADD <git repository>`
 * (src/builder/executor/git-source.ts). Without it every other build works;
 * those steps fail, so its absence is a warning.
 */
import type { Check } from '../types.ts'

export const checkGit: Check = async ({ system }) => {
  const version = await system.toolVersion('git')
  return [version === undefined
    ? { id: 'git', title: 'git', status: 'warn', detail: 'git is not on PATH: ADD of a git repository fails', fix: 'install git (Debian/Ubuntu: apt-get install git; or a module: module load git)' }
    : { id: 'git', title: 'git', status: 'ok', detail: version }]
}
