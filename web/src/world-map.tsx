import { geoNaturalEarth1, geoPath } from 'd3-geo'
import { feature } from 'topojson-client'
import type { GeometryCollection, Topology } from 'topojson-specification'
import countries110m from 'world-atlas/countries-110m.json'
import type { NodeView, SensorReadingView } from './api.js'

const WIDTH = 960
const HEIGHT = 480

// The projection and the countries' outlines are computed once: the geometry ships in the bundle.
const topology = countries110m as unknown as Topology<{ countries: GeometryCollection }>
const land = feature(topology, topology.objects.countries)
const projection = geoNaturalEarth1().fitExtent(
  [
    [8, 8],
    [WIDTH - 8, HEIGHT - 8],
  ],
  { type: 'Sphere' },
)
const path = geoPath(projection)
const sphere = path({ type: 'Sphere' }) ?? ''
const outlines = land.features.map((f) => path(f) ?? '')

/**
 * The nodes on a world map (Natural Earth projection), green when online, red when not; sensors as
 * small diamonds at their coarse cell's centre with their latest values and score.
 */
export function WorldMap(props: {
  nodes: readonly NodeView[]
  sensors?: readonly SensorReadingView[]
  onSelect: (peerId: string) => void
}) {
  // One mark per sensor, its kinds' latest values in the title.
  const bySensor = new Map<string, SensorReadingView[]>()
  for (const r of props.sensors ?? []) bySensor.set(r.sensor, [...(bySensor.get(r.sensor) ?? []), r])
  return (
    <svg class="map" viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label="Map of the nodes">
      <path class="sphere" d={sphere} />
      {outlines.map((d, i) => (
        <path key={i} class="land" d={d} />
      ))}
      {props.nodes.map((n) => {
        if (n.lat === null || n.lon === null) return null
        const xy = projection([n.lon, n.lat])
        if (xy === null) return null
        return (
          // biome-ignore lint/a11y/useSemanticElements: an SVG mark, not an HTML control
          <g
            key={n.peerId}
            class={`marker ${n.online ? 'online' : 'offline'}`}
            data-peer-id={n.peerId}
            transform={`translate(${xy[0].toFixed(1)},${xy[1].toFixed(1)})`}
            onClick={() => props.onSelect(n.peerId)}
            role="button"
            tabIndex={0}
            onKeyDown={(e) => {
              if (e.key === 'Enter') props.onSelect(n.peerId)
            }}
          >
            <circle class="halo" r="11" />
            <circle class="dot" r="5" />
            <title>{`${n.label ?? n.peerId} — ${n.online ? 'online' : 'offline'}`}</title>
          </g>
        )
      })}
      {[...bySensor].map(([sensor, readings]) => {
        const first = readings[0] as SensorReadingView
        const xy = projection([first.lon, first.lat])
        if (xy === null) return null
        const suspect = readings.some((r) => r.quality.flag === 'suspect')
        const values = readings.map((r) => `${r.kind} ${r.value} ${r.unit}`).join(', ')
        const score =
          first.score === null ? 'not judged yet' : `score ${(first.score.scorePpm / 10_000).toFixed(1)}%`
        return (
          <g
            key={sensor}
            class={`sensor ${suspect ? 'suspect' : 'ok'}`}
            data-sensor={sensor}
            transform={`translate(${(xy[0] + 9).toFixed(1)},${(xy[1] - 9).toFixed(1)})`}
          >
            <rect x="-3.5" y="-3.5" width="7" height="7" transform="rotate(45)" />
            <title>{`sensor ${sensor.slice(-8)}: ${values} (${score})`}</title>
          </g>
        )
      })}
    </svg>
  )
}
