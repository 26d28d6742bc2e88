import {
  cellToLatLng,
  cellToParent,
  getHexagonEdgeLengthAvg,
  greatCircleDistance,
  gridDisk,
  latLngToCell,
} from 'h3-js'
import { InvalidArgumentError } from '../core/errors.js'
import type { NetworkPort, Unsubscribe, Verdict } from '../mesh/network-port.js'
import type { PeerVerifier } from '../mesh/peer-key.js'
import type { SignedEnvelope, WireCodec } from '../mesh/wire-codec.js'
import {
  CertificateCache,
  checkReading,
  SENSOR_CELL_RESOLUTION,
  SENSOR_KINDS,
  SENSOR_READING,
  type SensorKind,
  type SensorReadingBody,
  sensorTopic,
} from './reading.js'

/** Widest subscription radius (km): about 130 coarse cells, each its own gossip topic. */
export const MAX_SUBSCRIBE_RADIUS_KM = 100

/** What a subscription asks for. */
export interface SensorQuery {
  near: { lat: number; lon: number }
  /** Kilometres around `near` (at most {@link MAX_SUBSCRIBE_RADIUS_KM}). */
  radiusKm: number
  /** Only this kind (default: every kind). */
  kind?: SensorKind
}

/** A checked reading as a subscriber receives it, with its quality flag. */
export interface SubscribedReading {
  /** The sensor's device key (peer id). */
  sensor: string
  /** The node that certified the sensor. */
  node: string
  /**
   * The hardware maker whose certificate of the device key was checked (its key's peer id); absent:
   * the device shows none. Whether the maker is approved by governance is not checked here.
   */
  maker?: string
  kind: SensorKind
  value: number
  unit: string
  /** When measured (unix ms, the device's clock). */
  at: number
  /** The coarse cell (resolution 5) and its centre's distance from `near` (km, rounded). */
  cell: string
  distanceKm: number
  /**
   * `ok`, or `suspect` with the reasons seen on this reading alone: `out_of_bounds`,
   * `implausible_rate` (against the sensor's previous reading), `stuck` (its last 10 values equal),
   * `clock_skew` (measured more than 30 s from its arrival). Verifiers score each sensor per epoch
   * on the same grounds and more (agreement with neighbours, location).
   */
  quality: { flag: 'ok' | 'suspect'; reasons: string[] }
}

/** The coarse cells (resolution 5) whose centre lies within `radiusKm` (plus a cell's reach) of `near`. */
export function cellsNear(near: SensorQuery['near'], radiusKm: number): string[] {
  const center = cellToParent(latLngToCell(near.lat, near.lon, 7), SENSOR_CELL_RESOLUTION)
  const edge = getHexagonEdgeLengthAvg(SENSOR_CELL_RESOLUTION, 'km')
  const k = Math.ceil(radiusKm / (edge * 1.5)) + 1
  return gridDisk(center, k)
    .filter((c) => {
      const [lat, lon] = cellToLatLng(c)
      return greatCircleDistance([near.lat, near.lon], [lat, lon], 'km') <= radiusKm + edge * 2
    })
    .sort()
}

/** Checks a query; throws InvalidArgumentError naming the bad part. */
export function validateSensorQuery(q: SensorQuery): void {
  const { lat, lon } = q.near
  if (!(Number.isFinite(lat) && lat >= -90 && lat <= 90 && Number.isFinite(lon) && lon >= -180 && lon <= 180))
    throw new InvalidArgumentError('near must be a latitude in [-90, 90] and a longitude in [-180, 180]', {
      hint: 'Pass --near LAT,LON, e.g. --near 52.52,13.40',
    })
  if (!(Number.isFinite(q.radiusKm) && q.radiusKm > 0 && q.radiusKm <= MAX_SUBSCRIBE_RADIUS_KM))
    throw new InvalidArgumentError(`radius must be in (0, ${MAX_SUBSCRIBE_RADIUS_KM}] km`, {
      hint: `Pass --radius KM of at most ${MAX_SUBSCRIBE_RADIUS_KM}`,
    })
  if (q.kind !== undefined && !(q.kind in SENSOR_KINDS))
    throw new InvalidArgumentError(`unknown sensor kind ${JSON.stringify(q.kind)}`, {
      hint: `Use one of ${Object.keys(SENSOR_KINDS).join(', ')}`,
    })
}

/** A value repeated this many times over this long is flagged stuck (the verifiers' quality rule). */
const STUCK_READINGS = 10
const STUCK_SPAN_MS = 10 * 60_000

/** Most sensors whose recent values a checker remembers (for its rate and stuck flags). */
const MAX_TRACKED = 10_000

/** A checked reading with its quality flag, before any place filter. */
export type CheckedReading = Omit<SubscribedReading, 'distanceKm'>

/** What a reading checker needs. */
export interface ReadingCheckerComponents {
  /** Decodes with replay protection; knows SENSOR_READING. */
  codec: WireCodec
  verifier: PeerVerifier
  network: string
  now: () => number
}

/**
 * Checks gossiped readings for a builder or an explorer: decodes each (size, schema, the device
 * key's signature, replay, clock skew), checks it against the node certificate it carries (and the
 * maker's certificate inside, if any), and flags
 * its quality against the sensor's previous readings. `check` returns the verdict for gossip and the
 * reading when it is good; bad ones are counted in `dropped`.
 */
export function readingChecker(components: ReadingCheckerComponents): {
  check(data: Uint8Array): { verdict: Verdict; reading?: CheckedReading }
  dropped(): number
} {
  /** Per sensor and kind: the latest reading's time, and the run of equal values and when it began. */
  const recent = new Map<string, { at: number; value: number; same: number; since: number }>()
  const certificates = new CertificateCache(1_000)
  let dropped = 0
  return {
    dropped: () => dropped,
    check(data) {
      const decoded = components.codec.decode(data)
      if (!decoded.ok || decoded.envelope.type !== SENSOR_READING.type) {
        dropped++
        return { verdict: decoded.ok ? 'reject' : decoded.verdict }
      }
      const reading = decoded.envelope as SignedEnvelope<SensorReadingBody>
      const checked = checkReading(reading, {
        network: components.network,
        verifier: components.verifier,
        certificates,
      })
      if (!checked.ok) {
        dropped++
        return { verdict: 'reject' }
      }
      const b = reading.body
      const spec = SENSOR_KINDS[b.kind]
      const reasons: string[] = []
      if (b.value < spec.min || b.value > spec.max) reasons.push('out_of_bounds')
      const key = `${reading.from}|${b.kind}`
      const last = recent.get(key)
      if (last !== undefined) {
        const minutes = Math.max((b.at - last.at) / 60_000, 1 / 60)
        if (Math.abs(b.value - last.value) / minutes > spec.maxChangePerMinute)
          reasons.push('implausible_rate')
      }
      // Stuck as the verifiers judge it: the same value over 10 readings or more and 10 minutes or
      // more (a slow quantity may rightly hold one value, rounded, for a few readings).
      const run =
        last !== undefined && last.value === b.value
          ? { same: last.same + 1, since: last.since }
          : { same: 1, since: b.at }
      if (run.same >= STUCK_READINGS && b.at - run.since >= STUCK_SPAN_MS) reasons.push('stuck')
      if (Math.abs(components.now() - b.at) > 30_000) reasons.push('clock_skew')
      if (last === undefined && recent.size >= MAX_TRACKED)
        recent.delete(recent.keys().next().value as string)
      recent.set(key, { at: b.at, value: b.value, ...run })
      return {
        verdict: 'accept',
        reading: {
          sensor: reading.from,
          node: checked.node,
          ...(checked.maker === undefined ? {} : { maker: checked.maker }),
          kind: b.kind,
          value: b.value,
          unit: b.unit,
          at: b.at,
          cell: b.cell,
          quality: { flag: reasons.length === 0 ? 'ok' : 'suspect', reasons },
        },
      }
    },
  }
}

/**
 * Subscribes to the readings of every coarse cell around `query.near`: each is checked by a
 * {@link readingChecker}, filtered by kind, and handed to `onReading` with its distance. Bad
 * readings are dropped and counted in `dropped`, never passed on.
 */
export function subscribeSensors(
  components: ReadingCheckerComponents & { port: Pick<NetworkPort, 'subscribe'> },
  query: SensorQuery,
  onReading: (reading: SubscribedReading) => void,
): { cells: string[]; dropped: () => number; unsubscribe: Unsubscribe } {
  validateSensorQuery(query)
  const cells = cellsNear(query.near, query.radiusKm)
  const checker = readingChecker(components)
  const handler = (data: Uint8Array): Verdict => {
    const { verdict, reading } = checker.check(data)
    if (reading === undefined || (query.kind !== undefined && reading.kind !== query.kind)) return verdict
    const [lat, lon] = cellToLatLng(reading.cell)
    const distanceKm = Math.round(greatCircleDistance([query.near.lat, query.near.lon], [lat, lon], 'km'))
    onReading({ ...reading, distanceKm })
    return verdict
  }
  const unsubscribes = cells.map((cell) =>
    components.port.subscribe(sensorTopic(components.network, cell), (m) => handler(m.data)),
  )
  return {
    cells,
    dropped: checker.dropped,
    unsubscribe: () => {
      for (const u of unsubscribes) u()
    },
  }
}
