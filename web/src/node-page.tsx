import { useEffect, useState } from 'preact/hooks'
import {
  bytes,
  getJson,
  type LiveState,
  mesh,
  type NodeDetailView,
  type NodeStorageView,
  pct,
  short,
} from './api.js'

/** One node: where and what it is, why its score is what it is per epoch, and what it can expect. */
export function NodePage(props: { peerId: string; live: LiveState }) {
  const [detail, setDetail] = useState<NodeDetailView | undefined>()
  const [error, setError] = useState<string | undefined>()
  const lastPosted = props.live.network?.lastPostedEpoch
  // Reloaded when a new epoch is posted; its online state follows the live node list.
  useEffect(() => {
    let closed = false
    getJson<NodeDetailView>(`/api/nodes/${props.peerId}`)
      .then((d) => {
        if (!closed) {
          setDetail(d)
          setError(undefined)
        }
      })
      .catch((err: Error) => !closed && setError(err.message))
    return () => {
      closed = true
    }
  }, [props.peerId, lastPosted])
  const live = props.live.nodes.find((n) => n.peerId === props.peerId)
  if (error) return <p class="error">{error}</p>
  if (detail === undefined) return <p class="empty">Loading…</p>
  const node = live ?? detail.node
  const verifierNames = new Map(
    (props.live.network?.verifiers ?? []).map((v) => [v.peerId, v.label ?? short(v.peerId)]),
  )
  return (
    <main class="node-page" data-peer-id={node.peerId}>
      <p>
        <a href="#/">← all nodes</a>
      </p>
      <section class="card wide">
        <h2>
          {node.label ?? short(node.peerId)}{' '}
          <span class={`badge ${node.online ? 'online' : 'offline'}`} data-testid="status">
            {node.online ? 'online' : 'offline'}
          </span>
        </h2>
        <dl class="facts">
          <dt>peer id</dt>
          <dd class="mono">{node.peerId}</dd>
          <dt>operator</dt>
          <dd class="mono">{node.operator}</dd>
          <dt>services</dt>
          <dd>{node.services.join(', ')}</dd>
          <dt>H3 cell</dt>
          <dd class="mono">
            {node.h3Cell}
            {node.lat !== null && node.lon !== null && ` (${node.lat.toFixed(3)}, ${node.lon.toFixed(3)})`}
          </dd>
          <dt>stake</dt>
          <dd>{mesh(node.stake)}</dd>
          <dt>earned · claimed</dt>
          <dd>
            {mesh(node.earned)} · {mesh(detail.claimed)}
          </dd>
        </dl>
      </section>
      <section class="card wide estimate">
        <h2>What it can expect</h2>
        <p data-testid="estimate">{detail.estimate.summary}</p>
      </section>
      {detail.storage && <StorageSection storage={detail.storage} names={verifierNames} />}
      <section class="card wide">
        <h2>Its score, epoch by epoch, and why</h2>
        {detail.epochs.length === 0 && <p class="empty">No posted epoch includes this node yet.</p>}
        {detail.epochs.map((e) => (
          <article key={e.epoch} class="epoch-score" data-epoch={e.epoch}>
            <header>
              <strong>epoch {e.epoch}</strong>
              <span class="scorebar" title={pct(e.scorePpm)}>
                <span style={{ width: `${e.scorePpm / 10_000}%` }} class={e.eligible ? 'ok' : 'low'} />
              </span>
              <span>uptime {pct(e.scorePpm)}</span>
              <span>earned {mesh(e.reward)}</span>
              {e.compute && <span>compute: {e.compute.jobs} jobs</span>}
              {e.vetting && <span class="badge vetting">vetting</span>}
            </header>
            <ul>
              {e.explanation.map((line) => (
                <li key={line}>{line}</li>
              ))}
            </ul>
            <table class="verifiers">
              <tbody>
                {e.verifiers.map((v) => (
                  <tr key={v.verifier}>
                    <td>{verifierNames.get(v.verifier) ?? short(v.verifier)}</td>
                    <td class="num">
                      {v.answered} / {v.challenges} answered
                    </td>
                    <td class="num">{pct(v.fractionPpm)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </article>
        ))}
      </section>
    </main>
  )
}

/** What a node stores and serves: its shards now, and the verifiers' challenges and byte counts per epoch. */
function StorageSection(props: { storage: NodeStorageView; names: ReadonlyMap<string, string> }) {
  const s = props.storage
  return (
    <section class="card wide storage" data-testid="storage">
      <h2>Storage and bandwidth</h2>
      <dl class="facts">
        <dt>holds now</dt>
        <dd data-testid="held">
          {s.shards === 0
            ? 'no shards'
            : `${s.shards} ${s.shards === 1 ? 'shard' : 'shards'} of ${s.files} ${s.files === 1 ? 'file' : 'files'}, ${bytes(s.bytes)}`}
        </dd>
      </dl>
      {s.held.length > 0 && (
        <table class="shards">
          <thead>
            <tr>
              <th>file</th>
              <th class="num">shard</th>
              <th class="num">size</th>
              <th class="num">kept in epochs</th>
            </tr>
          </thead>
          <tbody>
            {s.held.slice(0, 10).map((h) => (
              <tr key={`${h.cid}|${h.shard}`}>
                <td class="mono" title={h.cid}>
                  {h.cid.slice(0, 14)}…{h.cid.slice(-6)}
                </td>
                <td class="num">{h.shard}</td>
                <td class="num">{bytes(h.bytes)}</td>
                <td class="num">
                  {h.fromEpoch} – {h.untilEpoch}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3>Proofs of storage and bytes served, per posted epoch</h3>
      {s.epochs.length === 0 ? (
        <p class="empty">No posted epoch has storage challenges or served bytes for this node yet.</p>
      ) : (
        <table class="storage-epochs" data-testid="storage-epochs">
          <thead>
            <tr>
              <th>epoch</th>
              <th>challenges passed</th>
              <th class="num">proven</th>
              <th class="num">served</th>
              <th class="num">earned (storage · relay)</th>
            </tr>
          </thead>
          <tbody>
            {s.epochs.map((e) => (
              <tr key={e.epoch} data-epoch={e.epoch}>
                <td>{e.epoch}</td>
                <td
                  title={e.verifiers
                    .map(
                      (v) =>
                        `${props.names.get(v.verifier) ?? short(v.verifier)}: ${v.passed} of ${v.challenges} passed, ${bytes(v.servedBytes)} served`,
                    )
                    .join('\n')}
                >
                  {e.challenges === 0 ? (
                    <span class="sub">no challenges</span>
                  ) : (
                    <>
                      <span class={`proofbar${e.failed > 0 ? ' failing' : ''}`}>
                        <span style={{ width: `${(100 * e.passed) / e.challenges}%` }} />
                      </span>{' '}
                      {e.passed} of {e.challenges}
                      {e.failed > 0 && <span class="error"> · {e.failed} failed</span>}
                    </>
                  )}
                </td>
                <td class="num">{bytes(e.provenBytes)}</td>
                <td class="num">
                  {bytes(e.servedBytes)}
                  {e.downloaders > 0 && <span class="sub"> to {e.downloaders}</span>}
                </td>
                <td class="num">
                  {mesh(e.storageReward)} · {mesh(e.bandwidthReward)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  )
}
