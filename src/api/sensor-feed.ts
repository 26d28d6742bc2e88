import { cellToLatLng, greatCircleDistance } from 'h3-js'
import type { NetworkPort, Unsubscribe } from '../mesh/network-port.js'
import { coarseCellOf, type SensorKind, sensorTopic } from '../sensors/reading.js'
import { type CheckedReading, type ReadingCheckerComponents, readingChecker } from '../sensors/subscriber.js'

/** Most cells a feed follows, and most sensor-and-kind pairs whose latest reading it keeps. */
export const MAX_FEED_CELLS = 4_096
export const MAX_FEED_LATEST = 20_000

/** A latest reading as the API serves it: the checked reading, where its cell is, and when it came. */
export interface FeedReading extends CheckedReading {
  /** The coarse cell's centre (never the sensor's exact place). */
  lat: number
  lon: number
  /** When this API received it (unix ms). */
  receivedAt: number
}

/** What `latest` is asked for. */
export interface FeedQuery {
  near?: { lat: number; lon: number }
  radiusKm?: number
  kind?: SensorKind
  limit: number
}

/**
 * The sensor readings an explorer serves: follows the reading topics of the coarse cells of the
 * network's nodes (as the registry names them), checks every reading as a builder's subscription
 * does, and keeps the latest per sensor and kind, bounded; listeners hear each new one.
 */
export class SensorFeed {
  readonly #c: ReadingCheckerComponents & { port: Pick<NetworkPort, 'subscribe'> }
  readonly #checker: ReturnType<typeof readingChecker>
  readonly #cells = new Map<string, Unsubscribe>()
  readonly #latest = new Map<string, FeedReading>()
  readonly #listeners = new Set<(r: FeedReading) => void>()

  constructor(components: ReadingCheckerComponents & { port: Pick<NetworkPort, 'subscribe'> }) {
    this.#c = components
    this.#checker = readingChecker(components)
  }

  /** Readings dropped so far (forged, replayed, malformed). */
  get dropped(): number {
    return this.#checker.dropped()
  }

  /** Follows the coarse cells of these H3 cells (hex indexes; invalid or too coarse ones are skipped). */
  follow(h3Cells: Iterable<string | undefined>): void {
    for (const h3 of h3Cells) {
      const cell = coarseCellOf(h3)
      if (cell === undefined || this.#cells.has(cell) || this.#cells.size >= MAX_FEED_CELLS) continue
      this.#cells.set(
        cell,
        this.#c.port.subscribe(sensorTopic(this.#c.network, cell), (m) => {
          const { verdict, reading } = this.#checker.check(m.data)
          if (reading !== undefined) this.#keep(reading)
          return verdict
        }),
      )
    }
  }

  #keep(reading: CheckedReading): void {
    const [lat, lon] = cellToLatLng(reading.cell)
    const kept: FeedReading = { ...reading, lat, lon, receivedAt: this.#c.now() }
    const key = `${reading.sensor}|${reading.kind}`
    // Newest last: a sensor that reports again moves to the end; the oldest go first past the cap.
    this.#latest.delete(key)
    if (this.#latest.size >= MAX_FEED_LATEST) this.#latest.delete(this.#latest.keys().next().value as string)
    this.#latest.set(key, kept)
    for (const l of this.#listeners) l(kept)
  }

  /** The latest reading of each sensor and kind matching `query`, nearest first (newest first without `near`). */
  latest(query: FeedQuery): (FeedReading & { distanceKm?: number })[] {
    const out: (FeedReading & { distanceKm?: number })[] = []
    for (const r of this.#latest.values()) {
      if (query.kind !== undefined && r.kind !== query.kind) continue
      if (query.near === undefined) {
        out.push(r)
        continue
      }
      const distanceKm = Math.round(
        greatCircleDistance([query.near.lat, query.near.lon], [r.lat, r.lon], 'km'),
      )
      if (query.radiusKm !== undefined && distanceKm > query.radiusKm) continue
      out.push({ ...r, distanceKm })
    }
    if (query.near === undefined) out.sort((a, b) => b.receivedAt - a.receivedAt)
    else
      out.sort((a, b) => (a.distanceKm as number) - (b.distanceKm as number) || b.receivedAt - a.receivedAt)
    return out.slice(0, query.limit)
  }

  /** Hears every new reading; returns the unsubscribe function. */
  onReading(listener: (r: FeedReading) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  close(): void {
    for (const u of this.#cells.values()) u()
    this.#cells.clear()
    this.#listeners.clear()
  }
}
