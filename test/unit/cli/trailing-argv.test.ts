/**
 * `kiln run IMAGE CMD...`: main.ts puts a `--` before IMAGE, so the flags
 * of the command (sh -c) are not read as kiln's global ones nor run's own.
 */
import { describe, expect, it } from 'vitest'
import { buildProgram, markTrailingArgv, registerAll } from '../../../src/cli/main.ts'

describe('markTrailingArgv', async () => {
  const { program, ctx } = buildProgram()
  await registerAll(program, ctx)
  const mark = (...args: string[]): string[] => markTrailingArgv(program, args)

  it('ends kiln run\'s options at the image, skipping the values of options that take one', () => {
    expect(mark('run', 'img', 'sh', '-c', 'echo hi')).toEqual(['run', '--', 'img', 'sh', '-c', 'echo hi'])
    expect(mark('--data-dir', 'd', 'run', '-e', 'A=1', '-v', '/x:/y', '-it', '--network=host', 'img', 'ls', '-w'))
      .toEqual(['--data-dir', 'd', 'run', '-e', 'A=1', '-v', '/x:/y', '-it', '--network=host', '--', 'img', 'ls', '-w'])
    expect(mark('-c', 'kiln.yaml', 'run', '--user', '1000', 'img')).toEqual(['-c', 'kiln.yaml', 'run', '--user', '1000', '--', 'img'])
    // Global options after the command's name take their value too.
    expect(mark('run', '--log-level', 'debug', '--data-dir', 'd', 'img', 'true')).toEqual(['run', '--log-level', 'debug', '--data-dir', 'd', '--', 'img', 'true'])
  })

  it('leaves other commands, a run without image, and an explicit -- alone', () => {
    expect(mark('build', '-t', 'a:1', '.', '--data-dir', 'd')).toEqual(['build', '-t', 'a:1', '.', '--data-dir', 'd'])
    expect(mark('run', '--help')).toEqual(['run', '--help'])
    expect(mark('run', '-e', 'A=1', '--', 'img', '-x')).toEqual(['run', '-e', 'A=1', '--', 'img', '-x'])
  })
})
