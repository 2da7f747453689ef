/**
 * Capability detection: the probes' parsers on what the real tools print,
 * configured capabilities in the description, the terms `--require` is
 * matched against, and a fake nvidia-smi and mpirun on PATH detected for real.
 */
import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { detectCapabilities, parseMpiVersion, parseNvidiaSmi, parseRocmSmi, requirementTerms } from '../../../agent/capabilities.ts'
import { satisfies } from '../../../agent/jobs/index.ts'
import { capabilityNames, matchesCapabilityQuery } from '../../../protocols/capability.ts'
import type { CapabilityRecord } from '../../../protocols/capability.ts'
import { tempDirs } from '../../helpers/temp.ts'

const temp = tempDirs()
afterAll(() => { temp.cleanup() })

describe('probe parsers', () => {
  it('reads nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader', () => {
    expect(parseNvidiaSmi('NVIDIA A100-SXM4-40GB, 535.104.05, 40960 MiB\nNVIDIA A100-SXM4-40GB, 535.104.05, 40960 MiB\n')).toEqual([
      { vendor: 'nvidia', model: 'NVIDIA A100-SXM4-40GB', memoryMiB: 40960 },
      { vendor: 'nvidia', model: 'NVIDIA A100-SXM4-40GB', memoryMiB: 40960 }
    ])
    expect(parseNvidiaSmi('NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver.\n')).toEqual([])
  })

  it('reads rocm-smi --json', () => {
    expect(parseRocmSmi(JSON.stringify({ card0: { 'Card series': 'AMD Instinct MI250X', 'VRAM Total Memory (B)': '68702699520' }, system: {} })))
      .toEqual([{ vendor: 'amd', model: 'AMD Instinct MI250X', memoryMiB: 65520 }])
    expect(parseRocmSmi('not json')).toEqual([])
  })

  it.each([
    ['mpirun (Open MPI) 4.1.5\n\nReport bugs to http://www.open-mpi.org/community/help/\n', 'openmpi-4.1.5'],
    ['HYDRA build details:\n    Version:                                 4.0.2\n', 'mpich-4.0.2'],
    ['Intel(R) MPI Library for Linux* OS, Version 2021.9 Build 20230307\n', 'intel-mpi-2021.9'],
    ['some mpi\n', 'mpi']
  ])('reads mpirun --version %#', (out, expected) => {
    expect(parseMpiVersion(out)).toBe(expected)
  })
})

describe('the description and what --require matches', () => {
  it('advertises configured capabilities, fake nvidia-smi GPUs and mpirun\'s version; --require and --capability match them', async () => {
    const bin = temp.make()
    writeFileSync(join(bin, 'nvidia-smi'), '#!/bin/sh\n[ "$1" = "--query-gpu=name,driver_version,memory.total" ] || exit 9\necho "NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB"\n')
    writeFileSync(join(bin, 'mpirun'), '#!/bin/sh\necho "mpirun (Open MPI) 4.1.5"\n')
    for (const f of ['nvidia-smi', 'mpirun']) chmodSync(join(bin, f), 0o755)
    const path = process.env.PATH
    process.env.PATH = `${bin}:${path ?? ''}`
    let d
    try {
      d = await detectCapabilities({ configured: ['fpga', 'licence=abaqus-2024'], platforms: ['linux/amd64'] })
    } finally {
      process.env.PATH = path
    }
    expect(d.capabilities).toEqual(expect.arrayContaining(['gpu', 'mpi', 'fpga', 'licence']))
    expect(d.capabilities).not.toContain('cuda')
    expect(d.details).toMatchObject({ gpus: [{ vendor: 'nvidia', model: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559 }], mpi: 'openmpi-4.1.5' })
    const terms = requirementTerms(d, ['fpga', 'licence=abaqus-2024'])
    for (const req of ['gpu', 'fpga', 'mpi=openmpi', 'openmpi>=4.1', 'licence=abaqus-2024']) expect(satisfies(req, terms), req).toBe(true)
    for (const req of ['cuda', 'openmpi>=5', 'licence=abaqus-2023']) expect(satisfies(req, terms), req).toBe(false)
  })

  it('CPU features of native platforms are matched and found as capabilities', () => {
    const d = { platforms: [{ platform: 'linux/amd64', features: ['avx2', 'avx512f'] }], capabilities: ['gpu'], details: {} }
    expect(satisfies('avx512f', requirementTerms({ ...d, emulated: [], limits: { cpus: 1, memoryBytes: 1, diskBytes: 1 }, queue: { queued: 0, running: 0 } }))).toBe(true)
    expect(capabilityNames(d)).toEqual(['gpu', 'avx2', 'avx512f'])
    const record = { ...d, emulated: [] } as unknown as CapabilityRecord
    expect(matchesCapabilityQuery(record, { capability: 'avx2' })).toBe(true)
    expect(matchesCapabilityQuery(record, { capability: 'sve' })).toBe(false)
  })
})
