import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { z } from 'zod'
import { SENSOR_KINDS, type SensorKind } from './reading.js'
import { simulatedWeather } from './weather.js'

/**
 * Where a node's sensor readings come from: a plugin interface with a simulated weather station,
 * JSON lines (from a file or stdin: one reading a line, as a device or a script writes them) and MQTT. Each
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

/** Parses one JSON measurement (a line or an MQTT payload); undefined when malformed. */
function parseMeasurement(text: string, now: () => number, defaultSensor?: string): Measurement | undefined {
  if (Buffer.byteLength(text) > MAX_LINE_BYTES) return undefined
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return undefined
  }
  if (defaultSensor !== undefined && json !== null && typeof json === 'object' && !('sensor' in json))
    json = { ...json, sensor: defaultSensor }
  const parsed = lineSchema.safeParse(json)
  if (!parsed.success) return undefined
  const m = parsed.data
  return { sensor: m.sensor, kind: m.kind, value: m.value, at: m.at ?? now() }
}

/** Measurements an MQTT source holds before the node takes them (the oldest are dropped past it). */
export const MQTT_QUEUE = 1_024

/**
 * MQTT: subscribes to `topic` (default `meshwork/sensors/+`) on the broker at `url` (an operator's
 * devices publish to their local Mosquitto) and yields each message's JSON measurement, in the
 * JSON-lines format; a message without `sensor` is named by its topic's last level
 * (`meshwork/sensors/porch` is sensor `porch`). Malformed or oversized payloads are counted and
 * skipped; if the node falls behind, the oldest waiting measurements are dropped and counted.
 * Reconnects by itself while the broker is away.
 */
export function mqttSource(init: {
  url: string
  topic?: string
  name?: string
  now?: () => number
  /** Connection options passed to mqtt.js (e.g. username, password, clientId). */
  options?: Record<string, unknown>
}): SensorSource {
  let refused = 0
  const now = init.now ?? (() => Date.now())
  const topic = init.topic ?? 'meshwork/sensors/+'
  return {
    name: init.name ?? `mqtt ${init.url}`,
    get refused() {
      return refused
    },
    async *measurements(signal) {
      const { connectAsync } = await import('mqtt')
      const client = await connectAsync(init.url, {
        reconnectPeriod: 1_000,
        connectTimeout: 10_000,
        ...init.options,
      })
      const queue: Measurement[] = []
      let wake: (() => void) | undefined
      const onMessage = (t: string, payload: Buffer) => {
        const m = parseMeasurement(payload.toString('utf8'), now, t.split('/').pop() || undefined)
        if (m === undefined) {
          refused++
          return
        }
        if (queue.length >= MQTT_QUEUE) {
          queue.shift()
          refused++
        }
        queue.push(m)
        wake?.()
      }
      client.on('message', onMessage)
      const onAbort = () => wake?.()
      signal?.addEventListener('abort', onAbort)
      try {
        await client.subscribeAsync(topic, { qos: 0 })
        while (!signal?.aborted) {
          const next = queue.shift()
          if (next !== undefined) {
            yield next
            continue
          }
          await new Promise<void>((resolve) => {
            wake = resolve
          })
          wake = undefined
        }
      } finally {
        signal?.removeEventListener('abort', onAbort)
        client.off('message', onMessage)
        await client.endAsync(true).catch(() => undefined)
      }
    },
  }
}

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
      // Stopping must not wait for a next line that may never come (stdin, a quiet file).
      const onAbort = () => lines.close()
      signal?.addEventListener('abort', onAbort, { once: true })
      try {
        for await (const line of lines) {
          if (signal?.aborted) return
          if (line.trim() === '') continue
          const m = parseMeasurement(line, now)
          if (m === undefined) {
            refused++
            continue
          }
          yield m
        }
      } finally {
        signal?.removeEventListener('abort', onAbort)
        lines.close()
      }
    },
  }
}

/**
 * A simulated weather station as a source: temperature, humidity and pressure every `everyMs`
 * (default a minute), deterministic from `seed`, from `startMs` on; `count` readings of each kind
 * (default: until aborted). Paced by the wall clock, each reading at its own time; `sleep` paces it
 * instead (tests pass one that does not wait).
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
  return {
    name: 'simulated-weather',
    refused: 0,
    async *measurements(signal) {
      for (let i = 0; init.count === undefined || i < init.count; i++) {
        if (init.sleep !== undefined) {
          if (i > 0) await init.sleep(every, signal)
        } else {
          // Real time: each reading when its time comes, so its timestamp is now (no drift over
          // hours); after a stall longer than a period, on to the current slot.
          const late = Date.now() - (init.startMs + i * every)
          if (late > every) i += Math.floor(late / every)
          await sleepUntil(init.startMs + i * every, signal)
        }
        if (signal?.aborted) return
        const at = init.startMs + i * every
        for (const kind of ['temperature', 'humidity', 'pressure'] as const)
          yield { sensor: init.sensor, kind, value: station.read(kind, at), at }
      }
    },
  }
}

/** Resolves at `ms` (unix) or on abort, whichever comes first. */
function sleepUntil(ms: number, signal?: AbortSignal): Promise<void> {
  const wait = ms - Date.now()
  if (wait <= 0 || signal?.aborted) return Promise.resolve()
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, wait)
    signal?.addEventListener('abort', done, { once: true })
  })
}
