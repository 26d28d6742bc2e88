import { Fragment } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { bytes, type LiveState, mesh, pct, short, useLiveState } from './api.js'
import { EpochChart, LatencyChart, latencyStats } from './charts.js'
import { GovernancePanel } from './governance.js'
import { NodePage } from './node-page.js'
import { WorldMap } from './world-map.js'

/** The page the fragment names: `#/` (overview) or `#/nodes/PEER`. */
function useRoute(): string {
  const [hash, setHash] = useState(location.hash)
  useEffect(() => {
    const on = () => setHash(location.hash)
    addEventListener('hashchange', on)
    return () => removeEventListener('hashchange', on)
  }, [])
  return hash.replace(/^#/, '') || '/'
}

const openNode = (peerId: string) => {
  location.hash = `#/nodes/${peerId}`
}

/** The dashboard: a header with the network's state, then the overview or a node's page. */
export function App() {
  const state = useLiveState()
  const route = useRoute()
  const node = /^\/nodes\/([1-9A-Za-z]{32,128})$/.exec(route)?.[1]
  return (
    <div class="page">
      <Header state={state} />
      {state.error && <p class="error">The API did not answer: {state.error}</p>}
      {node === undefined ? <Overview state={state} /> : <NodePage peerId={node} live={state} />}
      <footer>
        Meshwork · data from the chain and the verifiers' bundles · <a href="/api/openapi.json">API</a>
      </footer>
    </div>
  )
}

function Header({ state }: { state: LiveState }) {
  const n = state.network
  const [now, setNow] = useState(Date.now())
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1_000)
    return () => clearInterval(t)
  }, [])
  const endsIn =
    n === undefined ? undefined : Math.max(0, Math.round(n.epochEndsAt - (now - state.clockOffsetMs) / 1_000))
  return (
    <header>
      <a class="brand" href="#/">
        <span class="logo">◆</span> Meshwork
      </a>
      {n && (
        <dl class="stats">
          <div>
            <dt>epoch</dt>
            <dd data-testid="epoch">
              {n.epoch} <small>ends in {endsIn} s</small>
            </dd>
          </div>
          <div>
            <dt>last posted</dt>
            <dd data-testid="last-posted">{n.lastPostedEpoch ?? '—'}</dd>
          </div>
          <div>
            <dt>nodes online</dt>
            <dd data-testid="nodes-online">
              {n.nodesOnline} / {n.nodes}
            </dd>
          </div>
          <div>
            <dt>verifiers</dt>
            <dd>
              {n.verifiers.filter((v) => v.online).length} / {n.verifiers.length}
            </dd>
          </div>
          <div>
            <dt>earned · claimed</dt>
            <dd>
              {mesh(n.totalEarned, 0)} · {mesh(n.totalClaimed, 0)}
            </dd>
          </div>
        </dl>
      )}
      <span class={`live ${state.live ? 'on' : 'off'}`} title="server-sent events">
        {state.live ? 'live' : 'reconnecting…'}
      </span>
    </header>
  )
}

/**
 * The overview's panels, each for a feature the API serves (`NetworkView.features`); storage adds
 * columns to the node table and a section to the node page rather than a panel of its own.
 */
const PANELS: readonly { feature: string; render: (state: LiveState) => preact.JSX.Element }[] = [
  {
    feature: 'nodes',
    render: (state) => (
      <>
        <section class="card wide">
          <h2>Nodes around the world</h2>
          <WorldMap nodes={state.nodes} sensors={state.sensors} onSelect={openNode} />
        </section>
        <section class="card wide">
          <h2>Nodes</h2>
          <NodeTable state={state} />
        </section>
      </>
    ),
  },
  {
    feature: 'epochs',
    render: (state) => (
      <section class="card">
        <h2>Epochs: emitted and claimed</h2>
        <p class="legend">
          <span class="swatch emitted" /> emitted <span class="swatch claimed" /> claimed (MESH)
        </p>
        <EpochChart epochs={state.epochs} />
        <EpochList state={state} />
      </section>
    ),
  },
  {
    feature: 'jobs',
    render: (state) => {
      const stats = latencyStats(state.jobs)
      return (
        <section class="card">
          <h2>Job latency</h2>
          <p class="legend">
            {state.jobs.length} recent jobs
            {stats.p50 !== undefined &&
              ` · p50 ${stats.p50.toFixed(1)} ms · p95 ${(stats.p95 ?? 0).toFixed(1)} ms`}
            {stats.failed > 0 && ` · ${stats.failed} failed`}
          </p>
          <LatencyChart jobs={state.jobs} />
          <JobList state={state} />
        </section>
      )
    },
  },
  {
    feature: 'sensors',
    render: (state) => (
      <section class="card wide">
        <h2>Sensors: latest readings</h2>
        <p class="legend">
          Signed by each sensor's device key, certified by its node (and by its hardware maker, when it has
          one), published per coarse cell; the score is the verifiers' judgement in the newest posted epoch
          (quality × location).
        </p>
        <SensorTable state={state} />
      </section>
    ),
  },
  {
    feature: 'governance',
    render: (state) => (
      <section class="card wide">
        <h2>Governance: parameters and proposals</h2>
        <p class="legend">
          Token holders change the network's parameters by an on-chain vote; a change applies from the epoch
          after it executes, identically for everyone.
        </p>
        <GovernancePanel governance={state.governance} />
      </section>
    ),
  },
]

function SensorTable({ state }: { state: LiveState }) {
  if (state.sensors.length === 0) return <p class="empty">No sensor readings heard yet.</p>
  const names = new Map(state.nodes.map((n) => [n.peerId, n.label ?? short(n.peerId)]))
  const rows = [...state.sensors].sort(
    (a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0) || (a.kind < b.kind ? -1 : 1),
  )
  return (
    <table class="sensors" data-testid="sensors">
      <thead>
        <tr>
          <th>sensor</th>
          <th>node</th>
          <th>maker</th>
          <th>kind</th>
          <th class="num">value</th>
          <th>quality</th>
          <th class="num">score</th>
          <th>when</th>
        </tr>
      </thead>
      <tbody>
        {rows.slice(0, 60).map((r) => (
          <tr key={`${r.sensor}|${r.kind}`} data-sensor={r.sensor}>
            <td class="mono">{short(r.sensor)}</td>
            <td>
              <a href={`#/nodes/${r.node}`}>{names.get(r.node) ?? short(r.node)}</a>
            </td>
            <td class="mono" title={r.maker ?? 'no maker certifies this device'}>
              {r.maker === undefined ? '—' : short(r.maker)}
            </td>
            <td>{r.kind}</td>
            <td class="num">
              {r.value} {r.unit}
            </td>
            <td>
              <span class={`badge ${r.quality.flag === 'ok' ? 'online' : 'offline'}`}>
                {r.quality.flag === 'ok' ? 'ok' : `suspect: ${r.quality.reasons.join(', ')}`}
              </span>
            </td>
            <td class="num" title={r.score?.reason ?? 'not judged yet'}>
              {r.score === null ? '—' : pct(r.score.scorePpm)}
            </td>
            <td class="mono">{new Date(r.at).toISOString().slice(11, 19)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

function Overview({ state }: { state: LiveState }) {
  const features = state.network?.features
  return (
    <main class="overview">
      {PANELS.filter((p) => features === undefined || features.includes(p.feature)).map((p) => (
        <Fragment key={p.feature}>{p.render(state)}</Fragment>
      ))}
    </main>
  )
}

function NodeTable({ state }: { state: LiveState }) {
  if (state.nodes.length === 0) return <p class="empty">No registered nodes yet.</p>
  const storage = state.network?.features.includes('storage') ?? false
  return (
    <table class="nodes">
      <thead>
        <tr>
          <th>node</th>
          <th>status</th>
          <th>services</th>
          <th>place</th>
          <th class="num">stake</th>
          <th class="num">uptime</th>
          {storage && (
            <>
              <th class="num" title="shards its signed receipts commit to, and their bytes">
                stored
              </th>
              <th class="num" title="storage challenges passed in the newest posted epoch">
                proofs
              </th>
              <th class="num" title="bytes downloaders signed receipts for in the newest posted epoch">
                served
              </th>
            </>
          )}
          <th class="num">last epoch</th>
          <th class="num">earned</th>
        </tr>
      </thead>
      <tbody>
        {state.nodes.map((n) => (
          <tr key={n.peerId} data-peer-id={n.peerId} class={n.online ? 'online' : 'offline'}>
            <td>
              <a href={`#/nodes/${n.peerId}`}>{n.label ?? short(n.peerId)}</a>
              <div class="sub mono">{short(n.peerId)}</div>
            </td>
            <td>
              <span class={`badge ${n.online ? 'online' : 'offline'}`} data-testid="status">
                {n.online ? 'online' : 'offline'}
              </span>
            </td>
            <td>{n.services.join(', ')}</td>
            <td class="mono">
              {n.lat === null || n.lon === null ? '—' : `${n.lat.toFixed(2)}, ${n.lon.toFixed(2)}`}
            </td>
            <td class="num">{mesh(n.stake, 0)}</td>
            <td class="num">{n.uptimePpm === null ? '—' : pct(n.uptimePpm)}</td>
            {storage && <StorageCells node={n} />}
            <td class="num">{n.lastReward === null ? '—' : mesh(n.lastReward)}</td>
            <td class="num">{mesh(n.earned)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

function StorageCells({ node }: { node: LiveState['nodes'][number] }) {
  const s = node.storage
  if (s === undefined)
    return (
      <>
        <td class="num">—</td>
        <td class="num">—</td>
        <td class="num">—</td>
      </>
    )
  return (
    <>
      <td class="num" data-testid="stored">
        {s.shards === 0 ? '—' : `${bytes(s.bytes)} · ${s.shards} ${s.shards === 1 ? 'shard' : 'shards'}`}
      </td>
      <td class={`num${s.passed < s.challenges ? ' bad' : ''}`} data-testid="proofs">
        {s.challenges === 0 ? '—' : `${s.passed} / ${s.challenges}`}
      </td>
      <td class="num" data-testid="served">
        {s.servedBytes === 0 ? '—' : bytes(s.servedBytes)}
      </td>
    </>
  )
}

function EpochList({ state }: { state: LiveState }) {
  return (
    <ol class="timeline" data-testid="epochs">
      {state.epochs.slice(0, 8).map((e) => (
        <li key={e.epoch} data-epoch={e.epoch}>
          <strong>epoch {e.epoch}</strong> <span class="mono">{e.root.slice(0, 12)}…</span> · paid{' '}
          {mesh(e.paid, 0)} · claimed {mesh(e.claimed, 0)}
          <div
            class="sub mono"
            title="the bundle's CID: anyone can fetch it from a verifier and recompute the root"
          >
            bundle {e.cid.slice(0, 20)}…
          </div>
        </li>
      ))}
    </ol>
  )
}

function JobList({ state }: { state: LiveState }) {
  const names = new Map(state.nodes.map((n) => [n.peerId, n.label ?? short(n.peerId)]))
  return (
    <table class="jobs">
      <tbody>
        {state.jobs.slice(0, 6).map((j) => (
          <tr key={j.id}>
            <td class="mono">{j.id.slice(0, 8)}</td>
            <td>{j.ok ? (names.get(j.provider ?? '') ?? short(j.provider ?? '')) : `failed (${j.error})`}</td>
            <td>{j.tier ?? ''}</td>
            <td>{j.verification ?? ''}</td>
            <td class="num">{j.latencyMs === null ? '' : `${j.latencyMs.toFixed(1)} ms`}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}
