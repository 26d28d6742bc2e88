import { mulberry32 } from '../core/prng.js'
import type { SensorKind } from './reading.js'

/**
 * A simulated weather station, deterministic from its seed and the time: temperature follows the
 * sun (coldest near 05:00, warmest near 15:00 local solar time, colder towards the poles), humidity
 * moves against it, pressure drifts slowly over days with the place's weather system; each with a
 * little noise drawn from the seed each minute and smooth in between. The same seed, place and time always read the same values.
 */
export interface WeatherStation {
  read(kind: Extract<SensorKind, 'temperature' | 'humidity' | 'pressure'>, atMs: number): number
}

/** A station at `lat`, `lon` (degrees) with noise from `seed`. */
export function simulatedWeather(init: { seed: number; lat: number; lon: number }): WeatherStation {
  const { seed, lat, lon } = init
  const mean = 27 - 0.45 * Math.abs(lat)
  const knot = (minute: number, salt: number) => {
    const next = mulberry32((Math.imul(seed, 0x9e3779b1) + Math.imul(minute, 40_503) + salt) >>> 0)
    return (next() / 2 ** 32 - 0.5) * 2
  }
  // Smooth in time: drawn each minute and interpolated between, so a station that measures every
  // few seconds changes a little at each reading, never in jumps.
  const noise = (atMs: number, salt: number) => {
    const minute = Math.floor(atMs / 60_000)
    const t = (atMs - minute * 60_000) / 60_000
    return (1 - t) * knot(minute, salt) + t * knot(minute + 1, salt)
  }
  const solarHour = (atMs: number) => (((atMs / 3_600_000 + lon / 15) % 24) + 24) % 24
  const daily = (atMs: number) => Math.sin((2 * Math.PI * (solarHour(atMs) - 9)) / 24)
  const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits
  return {
    read(kind, atMs) {
      if (kind === 'temperature') return round(mean + 6 * daily(atMs) + 0.3 * noise(atMs, 1), 2)
      if (kind === 'humidity')
        return round(Math.min(100, Math.max(5, 65 - 20 * daily(atMs) + 2 * noise(atMs, 2))), 1)
      // The slow drift is the weather system's, so it follows the place, not the station: stations
      // a few km apart read nearly the same pressure (a degree, about 100 km, moves the phase 0.1).
      const days = atMs / 86_400_000
      const phase = (lat + lon) / 10
      return round(1_013 + 8 * Math.sin((2 * Math.PI * days) / 5 + phase) + 0.4 * noise(atMs, 3), 1)
    },
  }
}
