import { z } from 'zod'
import { defineMessage } from '../mesh/wire-codec.js'

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
    })
    .strict()
    .refine((o) => o.answered <= o.challenges, { message: 'answered exceeds challenges' }),
  { maxBytes: 2_048 },
)

/** The body of an uptime observation. */
export type UptimeObservationBody = z.infer<typeof UPTIME_OBSERVATION.schema>
