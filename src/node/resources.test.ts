import { tmpdir } from 'node:os'
import { describe, expect, it } from 'vitest'
import { resourcesSchema } from './advertisement.js'
import { parseNvidiaSmi, probeResources } from './resources.js'

describe('resource probe', () => {
  it('reads cores, memory and free disk of this machine in the advertised shape', async () => {
    const r = await probeResources(tmpdir())
    expect(resourcesSchema.parse(r)).toEqual(r)
    expect(r.cores).toBeGreaterThan(0)
    expect(r.memoryMb).toBeGreaterThan(100)
    expect(r.diskFreeMb).toBeGreaterThan(0)
  })

  it('parses nvidia-smi output and ignores what is not a GPU line', () => {
    expect(
      parseNvidiaSmi('NVIDIA GeForce RTX 4090, 24564\nNVIDIA A100-SXM4-80GB, 81920\n\nwarning: x\n'),
    ).toEqual([
      { name: 'NVIDIA GeForce RTX 4090', memoryMb: 24564 },
      { name: 'NVIDIA A100-SXM4-80GB', memoryMb: 81920 },
    ])
  })
})
