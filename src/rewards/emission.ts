/** The emission schedule's parameters, as EpochRewards holds them. */
export interface EmissionSchedule {
  /** Base units released by each epoch of the first halving period. */
  initialEmission: bigint
  /** Epochs per halving period. */
  halvingInterval: bigint
}

/** What epoch `epoch` (from 0) alone releases: `initialEmission >> (epoch / halvingInterval)`. */
export function emissionOf(schedule: EmissionSchedule, epoch: bigint): bigint {
  const halvings = epoch / schedule.halvingInterval
  return halvings >= 256n ? 0n : schedule.initialEmission >> halvings
}

/** Everything released by the first `epochs` epochs, exactly as EpochRewards computes it. */
export function emittedBefore(schedule: EmissionSchedule, epochs: bigint): bigint {
  const { initialEmission: e0, halvingInterval: h } = schedule
  if (h <= 0n) throw new RangeError('halvingInterval must be positive')
  const full = epochs / h
  const halvings = full < 256n ? full : 256n
  let sum = 0n
  for (let j = 0n; j < halvings; j++) {
    const perEpoch = e0 >> j
    if (perEpoch === 0n) return sum
    sum += perEpoch * h
  }
  if (full < 256n) sum += (epochs % h) * (e0 >> full)
  return sum
}

/** Everything released by epochs 0 through `epoch`, inclusive (EpochRewards.emittedThrough). */
export function emittedThrough(schedule: EmissionSchedule, epoch: bigint): bigint {
  return emittedBefore(schedule, epoch + 1n)
}

/** Everything the schedule will ever release (EpochRewards.totalEmission). */
export function totalEmission(schedule: EmissionSchedule): bigint {
  return emittedBefore(schedule, (1n << 64n) - 1n)
}
