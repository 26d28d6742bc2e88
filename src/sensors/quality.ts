import { SENSOR_KINDS, type SensorKind } from './reading.js'

/**
 * A sensor's data quality over an epoch, in [0, 1] with an explanation, from what a verifier
 * received: each part is a fraction in [0, 1] and the score is their product, so one bad habit
 * (a stuck value, impossible jumps, a clock far off, a value far from its neighbours) is enough to
 * pay little. Pure: the same readings and neighbours give the same score anywhere.
 */

/** One reading as the verifier received it. */
export interface ReceivedReading {
  /** When the sensor says it measured (unix ms). */
  at: number
  value: number
  /** When the verifier received it (unix ms). */
  receivedAt: number
}

/** Why a sensor scored what it scored. */
export interface QualityExplanation {
  readings: number
  /** Fraction of readings within the kind's plausible bounds. */
  inBounds: number
  /** 1 unless the readings are stuck (almost every consecutive pair identical over 10 minutes or more): then 0. */
  notStuck: number
  /** Fraction of consecutive pairs changing no faster than the kind allows. */
  plausibleRates: number
  /** How close the sensor's median is to its neighbours' (1 within 3 robust deviations, 0 past 6). */
  agreement: number
  /** Fraction of readings whose timestamp is within `maxDriftMs` of their arrival. */
  onTime: number
  /** Fraction of readings with a timestamp of their own (not a duplicate). */
  unique: number
  /** The product of the parts, in [0, 1] (6 decimals). */
  score: number
  /** One line for people: the worst part. */
  summary: string
}

/**
 * Readings of a stuck sensor: at least this many, over at least this long (a value may rightly hold
 * for a few minutes), with almost every consecutive pair equal.
 */
const STUCK_MIN_READINGS = 10
const STUCK_MIN_SPAN_MS = 10 * 60_000
const STUCK_SHARE = 0.9

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  if (sorted.length === 0) return Number.NaN
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

/**
 * Scores one sensor of `kind` from its `readings` in the epoch and its `neighbours`' medians (other
 * sensors of the same kind in the same and adjacent cells; none: agreement is not judged).
 */
export function scoreSensor(
  kind: SensorKind,
  readings: readonly ReceivedReading[],
  neighbours: readonly number[],
  options: { maxDriftMs?: number } = {},
): QualityExplanation {
  const spec = SENSOR_KINDS[kind]
  const n = readings.length
  if (n === 0)
    return {
      readings: 0,
      inBounds: 0,
      notStuck: 0,
      plausibleRates: 0,
      agreement: 0,
      onTime: 0,
      unique: 0,
      score: 0,
      summary: 'no readings',
    }
  const sorted = [...readings].sort((a, b) => a.at - b.at)
  const inBounds = sorted.filter((r) => r.value >= spec.min && r.value <= spec.max).length / n
  let equalPairs = 0
  let plausiblePairs = 0
  for (let i = 1; i < n; i++) {
    const a = sorted[i - 1] as ReceivedReading
    const b = sorted[i] as ReceivedReading
    if (a.value === b.value) equalPairs++
    const minutes = Math.max((b.at - a.at) / 60_000, 1 / 60)
    if (Math.abs(b.value - a.value) / minutes <= spec.maxChangePerMinute) plausiblePairs++
  }
  const pairs = n - 1
  const span = (sorted[n - 1] as ReceivedReading).at - (sorted[0] as ReceivedReading).at
  const notStuck =
    n >= STUCK_MIN_READINGS && span >= STUCK_MIN_SPAN_MS && equalPairs >= STUCK_SHARE * pairs ? 0 : 1
  const plausibleRates = pairs === 0 ? 1 : plausiblePairs / pairs
  const maxDrift = options.maxDriftMs ?? 30_000
  const onTime = sorted.filter((r) => Math.abs(r.receivedAt - r.at) <= maxDrift).length / n
  const unique = new Set(sorted.map((r) => r.at)).size / n
  let agreement = 1
  if (neighbours.length > 0) {
    const own = median(sorted.map((r) => r.value))
    const center = median(neighbours)
    // Median absolute deviation, scaled to a standard deviation, with a floor of 1% of the kind's range.
    const mad = 1.4826 * median(neighbours.map((x) => Math.abs(x - center)))
    const spread = Math.max(mad, (spec.max - spec.min) / 100)
    const z = Math.abs(own - center) / spread
    agreement = z <= 3 ? 1 : Math.max(0, 1 - (z - 3) / 3)
  }
  const parts = { inBounds, notStuck, plausibleRates, agreement, onTime, unique }
  const score = Math.round(Object.values(parts).reduce((p, x) => p * x, 1) * 1e6) / 1e6
  const names: Record<keyof typeof parts, string> = {
    inBounds: 'values out of bounds',
    notStuck: 'stuck on one value',
    plausibleRates: 'impossible jumps',
    agreement: 'far from its neighbours',
    onTime: 'timestamps far from arrival',
    unique: 'duplicate timestamps',
  }
  const worst = (Object.keys(parts) as (keyof typeof parts)[]).reduce(
    (w, k) => (parts[k] < parts[w] ? k : w),
    'inBounds',
  )
  const summary = parts[worst] === 1 ? 'good' : `${names[worst]} (${Math.round(parts[worst] * 100)}%)`
  return { readings: n, ...parts, score, summary }
}
