import { cellToLatLng, greatCircleDistance, isValidCell } from 'h3-js'
import { MAX_PROBE_RTT_MS } from './observation.js'
import type { VerifierStore } from './store.js'

/** Where a verifier is: its configured place (`[verifier] h3Cell`'s centre). */
export interface VerifierPlace {
  lat: number
  lon: number
}

/**
 * A verifier's location probe of `node` in `epoch`: its fastest answered challenge (ms, rounded up)
 * and its own distance to the centre of `cell` (km, rounded down), so that anyone can check the
 * light-in-fibre bound against the claimed cell. Null when the verifier has no place, no answer was
 * timed, or `cell` is not an H3 cell.
 */
export function locationProbe(
  store: Pick<VerifierStore, 'fastestRtt'>,
  epoch: number,
  node: string,
  cell: string,
  place: VerifierPlace | undefined,
): { rttMs: number; distanceKm: number } | null {
  if (place === undefined || !isValidCell(cell)) return null
  const rtt = store.fastestRtt(epoch, node)
  if (rtt === undefined) return null
  return { rttMs: Math.min(MAX_PROBE_RTT_MS, Math.ceil(rtt)), distanceKm: distanceToCellKm(cell, place) }
}

/** From `place` to the centre of the H3 cell `cell` (valid), km, rounded down: what a probe records. */
export function distanceToCellKm(cell: string, place: VerifierPlace): number {
  const [lat, lon] = cellToLatLng(cell)
  return Math.floor(greatCircleDistance([lat, lon], [place.lat, place.lon], 'km'))
}
