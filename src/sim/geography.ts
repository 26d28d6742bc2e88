import { cellToLatLng, latLngToCell } from 'h3-js'
import type { LinkProfile } from '../mesh/sim-network.js'
import { POPULATION_CENTRES } from './population-centres.js'
import type { SimRandom } from './random.js'

/** The H3 resolution nodes are placed at (about 5 km² a cell: a neighbourhood). */
export const PLACEMENT_RESOLUTION = 7

/** Mean distance of a node from its city's centre, km (exponential: most near the centre). */
const SPREAD_KM = 12

const EARTH_RADIUS_KM = 6_371
/** Light in fibre: about 200 km a millisecond. */
const FIBRE_KM_PER_MS = 200
/** Fibre paths are longer than great circles (routes follow roads, coasts and exchanges). */
const ROUTE_FACTOR = 1.5

/** A place on Earth: an H3 cell and the point inside it a node sits at. */
export interface Place {
  cell: string
  lat: number
  lon: number
  /** The population centre it was drawn near. */
  centre: string
}

const cumulative: number[] = []
{
  let sum = 0
  for (const c of POPULATION_CENTRES) {
    sum += c.millions
    cumulative.push(sum)
  }
}

/**
 * Draws a place in proportion to population: a centre by its population, then a point at a random
 * bearing and an exponentially distributed distance from it, then that point's H3 cell.
 */
export function drawPlace(random: SimRandom): Place {
  const centre = POPULATION_CENTRES[random.weighted(cumulative)] as (typeof POPULATION_CENTRES)[number]
  const km = random.exponential(SPREAD_KM)
  const bearing = random.uniform() * 2 * Math.PI
  const lat = centre.lat + (km / 111.32) * Math.cos(bearing)
  const lon = centre.lon + (km / (111.32 * Math.cos((centre.lat * Math.PI) / 180))) * Math.sin(bearing)
  const r = (x: number) => Math.round(x * 1e5) / 1e5
  return { cell: latLngToCell(lat, lon, PLACEMENT_RESOLUTION), lat: r(lat), lon: r(lon), centre: centre.name }
}

/** The centre of an H3 cell, as a place. */
export function placeOfCell(cell: string, centre = 'claimed'): Place {
  const [lat, lon] = cellToLatLng(cell)
  return { cell, lat, lon, centre }
}

/** Great-circle distance between two points, km (haversine). */
export function greatCircleKm(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const rad = Math.PI / 180
  const dLat = (b.lat - a.lat) * rad
  const dLon = (b.lon - a.lon) * rad
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)))
}

/** One way through fibre over `km` of great circle, ms. */
export function fibreMs(km: number): number {
  return (km * ROUTE_FACTOR) / FIBRE_KM_PER_MS
}

/** How an endpoint connects: its access network's delay, jitter and loss. */
export interface Access {
  accessMs: number
  jitterMs: number
  lossRate: number
}

/**
 * The link between two endpoints: both access delays plus fibre over the great-circle distance (and
 * `extraMs`, e.g. a forwarding hop), the larger jitter, and the loss of either access network.
 */
export function linkBetween(
  a: { place: Pick<Place, 'lat' | 'lon'>; access: Access },
  b: { place: Pick<Place, 'lat' | 'lon'>; access: Access },
  extraMs = 0,
): LinkProfile {
  const latencyMs = a.access.accessMs + b.access.accessMs + fibreMs(greatCircleKm(a.place, b.place)) + extraMs
  return {
    latencyMs: Math.round(latencyMs * 100) / 100,
    jitterMs: Math.max(a.access.jitterMs, b.access.jitterMs),
    lossRate: 1 - (1 - a.access.lossRate) * (1 - b.access.lossRate),
  }
}
