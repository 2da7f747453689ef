import { describe, expect, it } from 'vitest'
import { satisfies, unmet } from '../../../agent/jobs/index.ts'

describe('requirement matching', () => {
  it.each([
    ['gpu', ['gpu'], true], ['gpu', ['gpus'], false], ['cuda>=12', ['cuda=12.4'], true], ['cuda>=12', ['cuda=11.8'], false],
    ['cuda>=12.4', ['cuda=12.4.1'], true], ['cuda<12', ['cuda=12'], false], ['mpi=openmpi', ['mpi=openmpi'], true],
    ['mpi=openmpi', ['mpi=mpich'], false], ['cuda>=12', ['cuda'], false], ['cuda>=12', ['cuda=beta'], false]
  ])('%s against %j -> %s', (req, caps, expected) => {
    expect(satisfies(req, caps)).toBe(expected)
  })

  it('lists what is missing', () => {
    expect(unmet(['gpu', 'cuda>=12', 'avx512f'], ['gpu', 'cuda=12.1'])).toEqual(['avx512f'])
  })
})
