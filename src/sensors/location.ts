import { cellToLatLng, greatCircleDistance } from 'h3-js'

/**
 * Proof of location from round trips: light in fibre covers about 200 km per millisecond, so a round
 * trip of `r` ms bounds the distance to `100 × r` km. A node whose claimed cell is farther from a
 * verifier than its round trip to that verifier allows cannot be there. With every bound kept, the
 * confidence is the agreement of its data with its claimed neighbours (a sensor that reads like the
 * cell it claims is more likely in it).
 */

/** Kilometres a millisecond of round trip can cover (there and back through fibre, c / 1.5). */
export const FIBRE_KM_PER_RTT_MS = 100

/** A verifier's measurement: where the verifier is, and its round trip to the node. */
export interface LocationProbe {
  verifier: string
  lat: number
  lon: number
  rttMs: number
}

/** What the probes say about a claimed cell. */
export interface LocationVerdict {
  /** In [0, 1]: 0 when any probe makes the claim impossible. */
  confidence: number
  /** Probes whose round trip is too short for the distance to the claimed cell. */
  impossible: { verifier: string; distanceKm: number; maxKm: number }[]
}

/**
 * The confidence that a node is in `claimedCell`, from `probes` and its data's agreement with the
 * cell's neighbours (in [0, 1]; 1 without neighbours). Without probes the location is unproven:
 * half the agreement.
 */
export function locationConfidence(
  claimedCell: string,
  probes: readonly LocationProbe[],
  agreement = 1,
): LocationVerdict {
  const [lat, lon] = cellToLatLng(claimedCell)
  const impossible: LocationVerdict['impossible'] = []
  for (const p of probes) {
    if (!(p.rttMs >= 0)) continue
    const distanceKm = greatCircleDistance([lat, lon], [p.lat, p.lon], 'km')
    const maxKm = FIBRE_KM_PER_RTT_MS * p.rttMs
    if (distanceKm > maxKm)
      impossible.push({ verifier: p.verifier, distanceKm: Math.round(distanceKm), maxKm })
  }
  const bounded = Math.min(1, Math.max(0, agreement))
  const confidence = impossible.length > 0 ? 0 : probes.length === 0 ? bounded / 2 : bounded
  return { confidence, impossible }
}
