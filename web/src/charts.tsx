import type { EpochView, JobView } from './api.js'
import { meshNumber } from './api.js'

const W = 480
const H = 180
const PAD = { l: 44, r: 8, t: 10, b: 22 }

function axisTicks(max: number): number[] {
  if (max <= 0) return [0]
  const step = 10 ** Math.floor(Math.log10(max))
  const nice = max / step > 5 ? step * 2 : max / step > 2 ? step : step / 2
  const ticks: number[] = []
  // Up to the first tick at or above the maximum, so that nothing is drawn past the top.
  for (let v = 0; ticks.length < 50; v += nice) {
    ticks.push(v)
    if (v >= max) break
  }
  return ticks
}

function compact(v: number): string {
  return v >= 1_000_000
    ? `${(v / 1_000_000).toFixed(1)}M`
    : v >= 1_000
      ? `${(v / 1_000).toFixed(0)}k`
      : `${v}`
}

/** Emitted and claimed MESH per posted epoch, oldest to newest (the last 24). */
export function EpochChart(props: { epochs: readonly EpochView[] }) {
  const shown = [...props.epochs].sort((a, b) => a.epoch - b.epoch).slice(-24)
  const max = Math.max(1, ...shown.flatMap((e) => [meshNumber(e.emitted), meshNumber(e.claimed)]))
  const ticks = axisTicks(max)
  const top = ticks.at(-1) ?? max
  const y = (v: number) => PAD.t + (H - PAD.t - PAD.b) * (1 - v / top)
  const slot = (W - PAD.l - PAD.r) / Math.max(1, shown.length)
  const bar = Math.max(2, Math.min(14, slot / 2 - 2))
  return (
    <svg class="chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-label="Emitted and claimed per epoch">
      {ticks.map((t) => (
        <g key={t}>
          <line class="grid" x1={PAD.l} x2={W - PAD.r} y1={y(t)} y2={y(t)} />
          <text class="tick" x={PAD.l - 6} y={y(t) + 4} text-anchor="end">
            {compact(t)}
          </text>
        </g>
      ))}
      {shown.map((e, i) => {
        const x = PAD.l + slot * i + slot / 2
        const emitted = meshNumber(e.emitted)
        const claimed = meshNumber(e.claimed)
        return (
          <g key={e.epoch} class="epoch-bar" data-epoch={e.epoch}>
            <rect class="emitted" x={x - bar - 1} y={y(emitted)} width={bar} height={y(0) - y(emitted)} />
            <rect class="claimed" x={x + 1} y={y(claimed)} width={bar} height={y(0) - y(claimed)} />
            {(shown.length <= 12 || i % 3 === 0) && (
              <text class="tick" x={x} y={H - 6} text-anchor="middle">
                {e.epoch}
              </text>
            )}
            <title>{`epoch ${e.epoch}: emitted ${emitted.toLocaleString()} MESH, claimed ${claimed.toLocaleString()} MESH`}</title>
          </g>
        )
      })}
      {shown.length === 0 && (
        <text class="empty-note" x={W / 2} y={H / 2} text-anchor="middle">
          waiting for the first epoch to close…
        </text>
      )}
    </svg>
  )
}

/** Each recent job's latency (ms), oldest to newest; failures drawn as crosses on the axis. */
export function LatencyChart(props: { jobs: readonly JobView[] }) {
  const shown = [...props.jobs].reverse().slice(-80)
  const ok = shown.filter((j) => j.ok && j.latencyMs !== null).map((j) => j.latencyMs as number)
  const sorted = [...ok].sort((a, b) => a - b)
  const p95 = sorted[Math.floor(sorted.length * 0.95)] ?? 0
  const ticks = axisTicks(Math.max(10, p95 * 1.2))
  const top = ticks.at(-1) ?? 10
  const y = (v: number) => PAD.t + (H - PAD.t - PAD.b) * (1 - Math.min(v, top) / top)
  const x = (i: number) => PAD.l + ((W - PAD.l - PAD.r) * (i + 0.5)) / Math.max(1, shown.length)
  const line = shown
    .map((j, i) => (j.ok && j.latencyMs !== null ? `${x(i).toFixed(1)},${y(j.latencyMs).toFixed(1)}` : null))
    .filter((p) => p !== null)
    .join(' ')
  return (
    <svg class="chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-label="Job latency">
      {ticks.map((t) => (
        <g key={t}>
          <line class="grid" x1={PAD.l} x2={W - PAD.r} y1={y(t)} y2={y(t)} />
          <text class="tick" x={PAD.l - 6} y={y(t) + 4} text-anchor="end">
            {compact(t)}
          </text>
        </g>
      ))}
      <polyline class="latency" points={line} />
      {shown.map((j, i) =>
        j.ok && j.latencyMs !== null ? (
          <circle key={j.id} class={`job ${j.tier ?? ''}`} cx={x(i)} cy={y(j.latencyMs)} r="3">
            <title>{`${j.latencyMs} ms on ${j.provider ?? '?'} (${j.tier}, ${j.verification})`}</title>
          </circle>
        ) : (
          <text key={j.id} class="job-failed" x={x(i)} y={y(0)} text-anchor="middle">
            ×<title>{`failed: ${j.error ?? 'unknown'}`}</title>
          </text>
        ),
      )}
      <text class="tick" x={W - PAD.r} y={H - 6} text-anchor="end">
        ms · newest right
      </text>
      {shown.length === 0 && (
        <text class="empty-note" x={W / 2} y={H / 2} text-anchor="middle">
          no jobs yet
        </text>
      )}
    </svg>
  )
}

/** The median and 95th percentile of the successful jobs' latencies. */
export function latencyStats(jobs: readonly JobView[]): {
  p50: number | undefined
  p95: number | undefined
  failed: number
} {
  const ok = jobs
    .filter((j) => j.ok && j.latencyMs !== null)
    .map((j) => j.latencyMs as number)
    .sort((a, b) => a - b)
  return {
    p50: ok[Math.floor(ok.length / 2)],
    p95: ok[Math.floor(ok.length * 0.95)],
    failed: jobs.filter((j) => !j.ok).length,
  }
}
