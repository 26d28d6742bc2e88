import { getResolution, isValidCell } from 'h3-js'
import { z } from 'zod'
import { parentCellAt } from '../core/h3-cells.js'
import type { PeerVerifier } from '../mesh/peer-key.js'
import { defineMessage, type SignedEnvelope, verifyEnvelope } from '../mesh/wire-codec.js'
import { type MakerCertificate, makerCertificateSchema, verifyMakerCertificate } from './maker.js'

/**
 * Sensor readings on the wire (the sensor issue): what a kind of reading may be, the node's signed
 * certificate of a sensor's device key, the reading the device key signs, and the gossip topic per
 * coarse H3 cell, so that a sensor's exact place is never published (resolution 5 is about
 * 250 km², a town and its surroundings).
 */

/** Each kind's unit, plausible bounds and fastest plausible change (per minute). */
export const SENSOR_KINDS = {
  temperature: { unit: '°C', min: -90, max: 60, maxChangePerMinute: 2 },
  humidity: { unit: '%', min: 0, max: 100, maxChangePerMinute: 10 },
  pressure: { unit: 'hPa', min: 870, max: 1_085, maxChangePerMinute: 1 },
  pm25: { unit: 'µg/m³', min: 0, max: 1_000, maxChangePerMinute: 200 },
} as const

export type SensorKind = keyof typeof SENSOR_KINDS

/** Every kind, in a stable order. */
export const SENSOR_KIND_NAMES = Object.keys(SENSOR_KINDS) as [SensorKind, ...SensorKind[]]

/** The resolution of the cells readings are published under (and the most precise they may name). */
export const SENSOR_CELL_RESOLUTION = 5

const cell = z
  .string()
  .max(16)
  .refine((c) => isValidCell(c) && getResolution(c) === SENSOR_CELL_RESOLUTION, 'an H3 cell of resolution 5')

/**
 * A node's certificate of one of its sensors, signed by the node's peer key: the sensor's device
 * key (its peer id), the kinds it measures and its coarse cell. Every reading carries it, so anyone
 * checks a reading alone: the device key signed the reading, the node signed the device key, and the
 * node is registered on-chain. Valid for at most an hour (the envelope's expiry); the node renews it.
 * A certified device's certificate carries its maker's certificate too (`src/sensors/maker.ts`).
 */
export const SENSOR_DEVICE = defineMessage(
  'sensor/device',
  z
    .object({
      /** The sensor's device key, as a peer id: readings are signed by it. */
      device: z.string().min(1).max(128),
      kinds: z
        .array(z.enum(SENSOR_KIND_NAMES))
        .min(1)
        .max(SENSOR_KIND_NAMES.length)
        .refine((ks) => new Set(ks).size === ks.length, 'kinds listed twice'),
      /** Where, as a cell of {@link SENSOR_CELL_RESOLUTION}: never more precise. */
      cell,
      /** The hardware maker's certificate of this device key, when it has one. */
      maker: makerCertificateSchema.exactOptional(),
    })
    .strict(),
  { maxBytes: 1_024 },
)

export type SensorDeviceBody = z.infer<typeof SENSOR_DEVICE.schema>

/** A reading, signed by the sensor's device key in a wire envelope (`from` is the device). */
export const SENSOR_READING = defineMessage(
  'sensor/reading',
  z
    .object({
      kind: z.enum(SENSOR_KIND_NAMES),
      value: z.number().finite(),
      unit: z.string().max(16),
      /** When it was measured (unix ms, the device's clock). */
      at: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
      /** Where: the certificate's cell. */
      cell,
      /** The node's certificate of this device (a signed `sensor/device` envelope). */
      device: z.unknown(),
    })
    .strict()
    .refine((r) => r.unit === SENSOR_KINDS[r.kind].unit, { message: 'the unit does not match the kind' }),
  { maxBytes: 2_048 },
)

export type SensorReadingBody = z.infer<typeof SENSOR_READING.schema>

/**
 * The coarse cell (resolution 5) readings from a node registered at `h3Cell` are published under:
 * its parent; undefined for a missing, invalid or coarser cell.
 */
export function coarseCellOf(h3Cell: string | undefined): string | undefined {
  return parentCellAt(h3Cell, SENSOR_CELL_RESOLUTION)
}

/** The gossip topic of a cell's readings. */
export function sensorTopic(network: string, cellId: string): string {
  return `meshwork/${network}/sensors/${cellId}/1`
}

/** Why a reading whose envelope is valid is still refused. */
export type ReadingFault =
  | 'bad_certificate'
  | 'certificate_mismatch'
  | 'certificate_expired'
  | 'kind_not_certified'
  | 'bad_maker_certificate'
  | 'maker_certificate_mismatch'

/**
 * Certificates already checked, by signature, with the exact JSON they were checked as: a device
 * sends the same certificate with every reading for up to an hour, so each is verified once. A
 * certificate whose text differs in any way is checked anew. Makers' certificates are kept by
 * device, so a node's renewed certificate does not check its device's maker again. Bounded (the
 * oldest are forgotten).
 */
export class CertificateCache {
  readonly #held = new Map<string, { json: string; envelope: SignedEnvelope<SensorDeviceBody> }>()
  /** By device: the maker's certificate checked good, as `maker\nmodel\nsig`. */
  readonly #makers = new Map<string, string>()
  readonly #max: number

  constructor(max = 10_000) {
    this.#max = max
  }

  /** The checked certificate `raw` is, if it was checked before exactly as it is. */
  get(raw: unknown): SignedEnvelope<SensorDeviceBody> | undefined {
    const sig = (raw as { sig?: unknown } | null)?.sig
    if (typeof sig !== 'string') return undefined
    const held = this.#held.get(sig)
    return held !== undefined && held.json === JSON.stringify(raw) ? held.envelope : undefined
  }

  /** Remembers a certificate checked good. */
  set(raw: unknown, envelope: SignedEnvelope<SensorDeviceBody>): void {
    if (this.#held.size >= this.#max) this.#held.delete(this.#held.keys().next().value as string)
    this.#held.set(envelope.sig, { json: JSON.stringify(raw), envelope })
  }

  /** Whether this maker's certificate was checked good before. */
  hasMaker(c: MakerCertificate): boolean {
    return this.#makers.get(c.device) === makerKey(c)
  }

  /** Remembers a maker's certificate checked good (the one its device last showed). */
  setMaker(c: MakerCertificate): void {
    if (!this.#makers.has(c.device) && this.#makers.size >= this.#max)
      this.#makers.delete(this.#makers.keys().next().value as string)
    this.#makers.set(c.device, makerKey(c))
  }
}

function makerKey(c: MakerCertificate): string {
  return `${c.maker}\n${c.model}\n${c.sig}`
}

/**
 * Checks a decoded reading against the certificate it carries: a valid `sensor/device` envelope
 * signed by a node (which node: the caller checks it is registered), for this device, naming the
 * reading's cell and kind, and valid when the reading was sent; and the maker's certificate inside
 * it, if any: for the same device and signed by its maker (which maker: whether it is approved is
 * the reward function's question). Never throws.
 */
export function checkReading(
  reading: SignedEnvelope<SensorReadingBody>,
  options: { network: string; verifier: PeerVerifier; certificates?: CertificateCache },
):
  | {
      ok: true
      node: string
      certificate: SignedEnvelope<SensorDeviceBody>
      /** The maker whose certificate of the device was checked; undefined: none. */
      maker: string | undefined
    }
  | { ok: false; fault: ReadingFault } {
  let c = options.certificates?.get(reading.body.device)
  if (c === undefined) {
    const cert = verifyEnvelope(reading.body.device, SENSOR_DEVICE, options)
    if (!cert.ok) return { ok: false, fault: 'bad_certificate' }
    const fault = checkMaker(cert.envelope.body, options)
    if (fault !== undefined) return { ok: false, fault }
    c = cert.envelope
    options.certificates?.set(reading.body.device, c)
  }
  if (c.body.device !== reading.from || c.body.cell !== reading.body.cell)
    return { ok: false, fault: 'certificate_mismatch' }
  if (reading.ts < c.ts || reading.ts > c.exp) return { ok: false, fault: 'certificate_expired' }
  if (!c.body.kinds.includes(reading.body.kind)) return { ok: false, fault: 'kind_not_certified' }
  return { ok: true, node: c.from, certificate: c, maker: c.body.maker?.maker }
}

/** Why the maker's certificate inside a node's certificate is not good; undefined: it is (or there is none). */
function checkMaker(
  body: SensorDeviceBody,
  options: { verifier: PeerVerifier; certificates?: CertificateCache },
): ReadingFault | undefined {
  const m = body.maker
  if (m === undefined) return undefined
  if (m.device !== body.device) return 'maker_certificate_mismatch'
  if (options.certificates?.hasMaker(m)) return undefined
  if (!verifyMakerCertificate(m, options.verifier).ok) return 'bad_maker_certificate'
  options.certificates?.setMaker(m)
  return undefined
}
