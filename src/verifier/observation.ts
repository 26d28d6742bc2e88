import { z } from 'zod'
import { defineMessage } from '../mesh/wire-codec.js'

/** Longest round trip a location probe records (ms): anything slower bounds nothing useful. */
export const MAX_PROBE_RTT_MS = 60_000

/** Most challenges one verifier sends one node in one epoch. */
export const MAX_CHALLENGES_PER_EPOCH = 10_000

/**
 * A verifier's uptime measurement of one node over one epoch: how many challenges it sent and how
 * many the node answered in time with a valid signature. Signed by the verifier's peer key in a wire
 * envelope, published on the observation topic, and carried in the epoch bundle.
 */
export const UPTIME_OBSERVATION = defineMessage(
  'observation/uptime',
  z
    .object({
      epoch: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
      /** The challenged node's peer id. */
      node: z.string().min(1).max(128),
      challenges: z.number().int().min(1).max(MAX_CHALLENGES_PER_EPOCH),
      answered: z.number().int().min(0).max(MAX_CHALLENGES_PER_EPOCH),
      /**
       * The verifier's location probe: its fastest answered challenge (ms) and its distance to the
       * node's registered cell (km). Absent when it has no place configured or no answer.
       */
      probe: z
        .object({
          rttMs: z.number().int().nonnegative().max(MAX_PROBE_RTT_MS),
          distanceKm: z.number().int().nonnegative().max(20_100),
        })
        .strict()
        .optional(),
    })
    .strict()
    .refine((o) => o.answered <= o.challenges, { message: 'answered exceeds challenges' }),
  { maxBytes: 2_048 },
)

/** The body of an uptime observation. */
export type UptimeObservationBody = z.infer<typeof UPTIME_OBSERVATION.schema>

/** Largest amount a compute observation carries (base units, decimal): 10^30, far above any emission. */
const MAX_VALUE_DIGITS = 31

/**
 * A verifier's count of one node's verified compute work over one epoch: the jobs of receipts it
 * checked (each result matched by an independent node) and their quoted prices, and whether it
 * confirmed fraud by the node (a signed wrong result, re-run by the verifier). Published on the
 * observation topic at the epoch's end, carried in the bundle next to the uptime observations.
 */
export const COMPUTE_OBSERVATION = defineMessage(
  'observation/compute',
  z
    .object({
      epoch: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
      node: z.string().min(1).max(128),
      jobs: z.number().int().min(0).max(1_000_000),
      value: z.string().regex(new RegExp(`^(0|[1-9][0-9]{0,${MAX_VALUE_DIGITS - 1}})$`), 'a decimal amount'),
      fraud: z.boolean(),
    })
    .strict(),
  { maxBytes: 2_048 },
)

/** The body of a compute observation. */
export type ComputeObservationBody = z.infer<typeof COMPUTE_OBSERVATION.schema>

/**
 * A verifier's proof-of-storage results for one node over one epoch: how many chunk challenges it
 * sent the node's shards, how many came back in time with a chunk that proves against the holder's
 * signed root, and the bytes of the shards whose every challenge passed.
 */
export const STORAGE_OBSERVATION = defineMessage(
  'observation/storage',
  z
    .object({
      epoch: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
      node: z.string().min(1).max(128),
      challenges: z.number().int().min(1).max(MAX_CHALLENGES_PER_EPOCH),
      passed: z.number().int().min(0).max(MAX_CHALLENGES_PER_EPOCH),
      bytes: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    })
    .strict()
    .refine((o) => o.passed <= o.challenges, { message: 'passed exceeds challenges' }),
  { maxBytes: 2_048 },
)

/** The body of a storage observation. */
export type StorageObservationBody = z.infer<typeof STORAGE_OBSERVATION.schema>

/**
 * A verifier's count of one node's delivery bandwidth over one epoch: the bytes downloaders signed
 * receipts for (the latest cumulative receipt of each download session, the holder's own identity
 * excluded), and from how many downloaders.
 */
export const BANDWIDTH_OBSERVATION = defineMessage(
  'observation/bandwidth',
  z
    .object({
      epoch: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
      node: z.string().min(1).max(128),
      bytes: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
      downloaders: z.number().int().min(1).max(1_000_000),
    })
    .strict(),
  { maxBytes: 2_048 },
)

/** The body of a bandwidth observation. */
export type BandwidthObservationBody = z.infer<typeof BANDWIDTH_OBSERVATION.schema>

/** Most sensors one node's sensor observation carries (a node certifies at most this many). */
export const MAX_SENSORS_PER_NODE = 16

/**
 * A verifier's judgement of one node's sensors over one epoch: the coarse cell the node's
 * certificates claim, the verifier's location probe of the node (its fastest round trip this epoch
 * and its own distance to the claimed cell, so anyone can check the light-in-fibre bound), and per
 * sensor its maker (whose certificate of the device the verifier checked), the readings it received,
 * their quality and their agreement with the neighbours (ppm), since when it has known the sensor
 * (seniority), and why, in one line.
 */
export const SENSOR_OBSERVATION = defineMessage(
  'observation/sensor',
  z
    .object({
      epoch: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
      node: z.string().min(1).max(128),
      cell: z.string().regex(/^[0-9a-f]{15}$/, 'an H3 cell index'),
      /** None when this verifier has no place configured or no answered challenge of the node. */
      probe: z
        .object({
          rttMs: z.number().int().nonnegative().max(MAX_PROBE_RTT_MS),
          /** From this verifier's place to the claimed cell's centre, km (rounded down). */
          distanceKm: z.number().int().nonnegative().max(20_100),
        })
        .strict()
        .nullable(),
      sensors: z
        .array(
          z
            .object({
              device: z.string().min(1).max(128),
              /**
               * The maker whose certificate of the device this verifier checked (its key's peer
               * id); absent: the device showed none. Whether the maker is approved is the reward
               * function's question (`params.hardware.makers`).
               */
              maker: z.string().min(1).max(128).exactOptional(),
              /** The epoch this verifier first took a reading of the sensor. */
              since: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
              readings: z.number().int().nonnegative().max(1_000_000),
              qualityPpm: z.number().int().min(0).max(1_000_000),
              agreementPpm: z.number().int().min(0).max(1_000_000),
              summary: z.string().max(120),
            })
            .strict(),
        )
        .min(1)
        .max(MAX_SENSORS_PER_NODE),
    })
    .strict(),
  { maxBytes: 8_192 },
)

/** The body of a sensor observation. */
export type SensorObservationBody = z.infer<typeof SENSOR_OBSERVATION.schema>
