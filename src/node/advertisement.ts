import { isValidCell } from 'h3-js'
import { isAddress } from 'viem'
import { z } from 'zod'
import { SERVICES } from '../chain/services.js'
import { defineMessage } from '../mesh/wire-codec.js'

const serviceNames = Object.keys(SERVICES) as [keyof typeof SERVICES, ...(keyof typeof SERVICES)[]]

/** One offered service and its price (decimal MESH base units per `unit`). */
export const serviceOfferSchema = z
  .object({
    name: z.enum(serviceNames),
    price: z.string().regex(/^\d{1,30}$/, 'a whole number of MESH base units'),
    unit: z.string().min(1).max(32),
    /** Service-specific facts (e.g. supported runtimes), small and flat. */
    params: z.record(z.string().max(32), z.union([z.string().max(128), z.number(), z.boolean()])).optional(),
  })
  .strict()

/** What the node has to offer. */
export const resourcesSchema = z
  .object({
    cores: z.number().int().min(0).max(4_096),
    memoryMb: z
      .number()
      .int()
      .min(0)
      .max(1 << 30),
    diskFreeMb: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    gpus: z
      .array(
        z
          .object({
            name: z.string().max(64),
            memoryMb: z
              .number()
              .int()
              .min(0)
              .max(1 << 24),
          })
          .strict(),
      )
      .max(16),
  })
  .strict()

/** The body of a node's signed advertisement (the envelope adds peer id, sequence and expiry). */
export const advertisementSchema = z
  .object({
    operator: z.string().refine((v) => isAddress(v, { strict: false }), 'not a 0x address'),
    services: z.array(serviceOfferSchema).max(8),
    resources: resourcesSchema,
    h3Cell: z.string().refine(isValidCell, 'not a valid H3 cell'),
    tier: z.enum(['edge', 'cloud']),
    version: z.string().min(1).max(32),
    /** Where to dial it (multiaddrs without /p2p). */
    addrs: z.array(z.string().min(1).max(256)).max(16),
  })
  .strict()

export type Advertisement = z.infer<typeof advertisementSchema>
export type ServiceOffer = z.infer<typeof serviceOfferSchema>
export type Resources = z.infer<typeof resourcesSchema>

/** The advertisement message type (8 KiB cap). */
export const ADVERTISEMENT = defineMessage('ad', advertisementSchema, { maxBytes: 8 * 1024 })

/** The gossip topic of a network's advertisements. */
export function adTopic(network: string): string {
  return `meshwork/${network}/ads/1`
}
