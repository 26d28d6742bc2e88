import { execFile } from 'node:child_process'
import { statfsSync } from 'node:fs'
import { availableParallelism, totalmem } from 'node:os'
import type { Resources } from './advertisement.js'

/** Parses `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits` output. */
export function parseNvidiaSmi(output: string): Resources['gpus'] {
  const gpus: Resources['gpus'] = []
  for (const line of output.split('\n')) {
    const m = /^\s*(.+?)\s*,\s*(\d+)\s*$/.exec(line)
    if (m && gpus.length < 16) gpus.push({ name: (m[1] as string).slice(0, 64), memoryMb: Number(m[2]) })
  }
  return gpus
}

/** Asks `nvidia-smi` for GPUs; none when it is missing, fails or takes over 3 s. */
export function probeGpus(): Promise<Resources['gpus']> {
  return new Promise((resolve) => {
    execFile(
      'nvidia-smi',
      ['--query-gpu=name,memory.total', '--format=csv,noheader,nounits'],
      { timeout: 3_000, maxBuffer: 64 * 1024 },
      (err, stdout) => resolve(err ? [] : parseNvidiaSmi(stdout)),
    )
  })
}

/** Probes what this machine can offer: cores, memory, free disk under `dir`, GPUs. */
export async function probeResources(dir: string): Promise<Resources> {
  let diskFreeMb = 0
  try {
    const fs = statfsSync(dir)
    diskFreeMb = Math.floor((Number(fs.bavail) * Number(fs.bsize)) / 2 ** 20)
  } catch {
    diskFreeMb = 0
  }
  return {
    cores: availableParallelism(),
    memoryMb: Math.floor(totalmem() / 2 ** 20),
    diskFreeMb,
    gpus: await probeGpus(),
  }
}
