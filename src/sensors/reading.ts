import { getResolution, isValidCell } from 'h3-js'
import { z } from 'zod'
import { defineMessage } from '../mesh/wire-codec.js'

/**
 * Sensor readings on the wire (the sensor issue): what a kind of reading may be, the signed reading
 * message, and the gossip topic per coarse H3 cell, so that a sensor's exact place is never
 * published (resolution 5 is about 250 km², a town and its surroundings).
 */

/** Each kind's unit, plausible bounds and fastest plausible change (per minute). */
export const SENSOR_KINDS = {
  temperature: { unit: '°C', min: -90, max: 60, maxChangePerMinute: 2 },
  humidity: { unit: '%', min: 0, max: 100, maxChangePerMinute: 10 },
  pressure: { unit: 'hPa', min: 870, max: 1_085, maxChangePerMinute: 1 },
  pm25: { unit: 'µg/m³', min: 0, max: 1_000, maxChangePerMinute: 200 },
} as const

export type SensorKind = keyof typeof SENSOR_KINDS

/** The resolution of the cells readings are published under (and the most precise they may name). */
export const SENSOR_CELL_RESOLUTION = 5

const kinds = Object.keys(SENSOR_KINDS) as [SensorKind, ...SensorKind[]]

/** A reading, signed by the sensor's device key in a wire envelope. */
export const SENSOR_READING = defineMessage(
  'sensor/reading',
  z
    .object({
      /** The sensor's id (its device key's hash, hex). */
      sensor: z.string().regex(/^[0-9a-f]{16,64}$/),
      kind: z.enum(kinds),
      value: z.number().finite(),
      unit: z.string().max(16),
      /** When it was measured (unix ms, the device's clock). */
      at: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
      /** Where, as a cell of {@link SENSOR_CELL_RESOLUTION}: never more precise. */
      cell: z
        .string()
        .refine(
          (c) => isValidCell(c) && getResolution(c) === SENSOR_CELL_RESOLUTION,
          'an H3 cell of resolution 5',
        ),
    })
    .strict()
    .refine((r) => r.unit === SENSOR_KINDS[r.kind].unit, { message: 'the unit does not match the kind' }),
  { maxBytes: 1_024 },
)

export type SensorReadingBody = z.infer<typeof SENSOR_READING.schema>

/** The gossip topic of a cell's readings. */
export function sensorTopic(network: string, cell: string): string {
  return `meshwork/${network}/sensors/${cell}/1`
}
