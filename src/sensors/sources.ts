import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { z } from 'zod'
import { SENSOR_KINDS, type SensorKind } from './reading.js'
import { simulatedWeather } from './weather.js'

/**
 * Where a node's sensor readings come from: a plugin interface with a simulated weather station and
 * JSON lines (from a file or stdin: one reading a line, as a device or a script writes them). Each
 * source yields raw measurements; the node signs them with the sensor's device key and publishes
 * them per coarse cell. A malformed line is counted and skipped, never fatal.
 */

/** One measurement from a source, before it is signed. */
export interface Measurement {
  /** The source's name for the sensor (the node maps it to the sensor's registered key). */
  sensor: string
  kind: SensorKind
  value: number
  /** Unix ms. */
  at: number
}

/** A source of measurements. */
export interface SensorSource {
  readonly name: string
  /** Measurements as they come; ends when the source does (never, for live sources). */
  measurements(signal?: AbortSignal): AsyncIterable<Measurement>
  /** Lines or messages skipped as malformed (for metrics). */
  readonly refused: number
}

const lineSchema = z
  .object({
    sensor: z.string().min(1).max(64),
    kind: z.enum(Object.keys(SENSOR_KINDS) as [SensorKind, ...SensorKind[]]),
    value: z.number().finite(),
    at: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
    unit: z.string().max(16).optional(),
  })
  .strict()
  .refine((m) => m.unit === undefined || m.unit === SENSOR_KINDS[m.kind].unit, {
    message: 'unit does not match the kind',
  })

/** Longest line read (a longer one is skipped whole). */
export const MAX_LINE_BYTES = 4_096

/**
 * JSON lines: `{"sensor":"porch","kind":"temperature","value":21.4,"at":1764000000000}` (`at`
 * defaults to the time the line is read, `unit` is optional but must be the kind's).
 */
export function jsonLinesSource(
  input: Readable,
  options: { name?: string; now?: () => number } = {},
): SensorSource {
  let refused = 0
  const now = options.now ?? (() => Date.now())
  return {
    name: options.name ?? 'json-lines',
    get refused() {
      return refused
    },
    async *measurements(signal) {
      const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })
      try {
        for await (const line of lines) {
          if (signal?.aborted) return
          if (line.trim() === '') continue
          if (Buffer.byteLength(line) > MAX_LINE_BYTES) {
            refused++
            continue
          }
          let parsed: z.infer<typeof lineSchema>
          try {
            parsed = lineSchema.parse(JSON.parse(line))
          } catch {
            refused++
            continue
          }
          yield { sensor: parsed.sensor, kind: parsed.kind, value: parsed.value, at: parsed.at ?? now() }
        }
      } finally {
        lines.close()
      }
    },
  }
}

/**
 * A simulated weather station as a source: temperature, humidity and pressure every `everyMs`
 * (default a minute), deterministic from `seed`, from `startMs` on; `count` readings of each kind
 * (default: until aborted). `sleep` paces it (tests pass one that does not wait).
 */
export function simulatedSource(init: {
  sensor: string
  seed: number
  lat: number
  lon: number
  startMs: number
  everyMs?: number
  count?: number
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
}): SensorSource {
  const station = simulatedWeather(init)
  const every = init.everyMs ?? 60_000
  const sleep =
    init.sleep ??
    ((ms: number, signal?: AbortSignal) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms)
        signal?.addEventListener('abort', () => {
          clearTimeout(timer)
          resolve()
        })
      }))
  return {
    name: 'simulated-weather',
    refused: 0,
    async *measurements(signal) {
      for (let i = 0; init.count === undefined || i < init.count; i++) {
        if (signal?.aborted) return
        const at = init.startMs + i * every
        for (const kind of ['temperature', 'humidity', 'pressure'] as const)
          yield { sensor: init.sensor, kind, value: station.read(kind, at), at }
        await sleep(every, signal)
      }
    },
  }
}
