import type { GovernanceView, ParamChangeView, ProposalView } from './api.js'
import { meshNumber } from './api.js'

/**
 * Governance: the proposals (state, a tally bar of the votes against the quorum, and the parameters
 * each would change), the parameter set in force, and every version with the epoch it applies from.
 */
export function GovernancePanel({ governance }: { governance: GovernanceView | undefined }) {
  if (governance === undefined) return <p class="empty">Loading…</p>
  const newest = governance.history[0]
  const pending = newest !== undefined && newest.version > governance.version ? newest : undefined
  return (
    <div class="governance" data-testid="governance">
      <div class="gov-columns">
        <div>
          <h3>Proposals</h3>
          {governance.proposals.length === 0 && (
            <p class="empty">
              No proposals yet:{' '}
              <span class="mono">meshwork gov propose --set KEY=VALUE --description TEXT</span>
            </p>
          )}
          {governance.proposals.map((p) => (
            <Proposal key={p.id} p={p} />
          ))}
          <h3>Versions of the reward parameters</h3>
          <ol class="history" data-testid="params-history">
            {governance.history.map((v) => (
              <li key={v.version} data-version={v.version}>
                <strong>version {v.version}</strong> from epoch {v.fromEpoch}
                {v.version === governance.version && <span class="badge online">in force</span>}
                {!v.applied && <span class="badge vetting">never applied</span>}
                {v.changes.length === 0 && v.makersChange === null ? (
                  <div class="sub">the deploy's set</div>
                ) : (
                  <Diff changes={v.changes} />
                )}
                {v.makersChange !== null && (
                  <div class="sub" data-testid="makers-change">
                    {v.makersChange}
                  </div>
                )}
              </li>
            ))}
          </ol>
        </div>
        <div>
          <h3>
            In force in epoch {governance.epoch}: version {governance.version}
            <span class="sub"> (from epoch {governance.fromEpoch})</span>
          </h3>
          {pending && (
            <p class="notice">
              Version {pending.version} applies from epoch {pending.fromEpoch}.
            </p>
          )}
          <table class="params" data-testid="params">
            <tbody>
              {governance.params.map((v) => (
                <tr key={v.key} data-key={v.key}>
                  <td class="mono">{v.key}</td>
                  <td class="num">{v.display}</td>
                  <td class="sub">{v.description}</td>
                </tr>
              ))}
              <tr data-key="hardware.makers">
                <td class="mono">hardware.makers</td>
                <td class="num mono" data-testid="makers">
                  {governance.makers.length === 0
                    ? 'none'
                    : governance.makers.map((m) => (
                        <div key={m} title={m}>
                          {m.slice(0, 12)}…
                        </div>
                      ))}
                </td>
                <td class="sub">makers whose certified hardware is paid</td>
              </tr>
            </tbody>
          </table>
        </div>
      </div>
    </div>
  )
}

function Proposal({ p }: { p: ProposalView }) {
  const f = meshNumber(p.votes.for)
  const a = meshNumber(p.votes.against)
  const ab = meshNumber(p.votes.abstain)
  const q = p.quorum === null ? 0 : meshNumber(p.quorum)
  // The bar's scale: every vote cast, or the quorum when fewer have voted.
  const scale = Math.max(f + a + ab, q, 1e-9)
  const w = (x: number) => `${((100 * x) / scale).toFixed(2)}%`
  const n = (x: number) => x.toLocaleString('en-US', { maximumFractionDigits: 0 })
  return (
    <article class="proposal" data-proposal-id={p.id} data-state={p.state}>
      <header>
        <span class={`badge state ${p.state}`} data-testid="proposal-state">
          {p.state}
        </span>
        <strong>{p.description.split('\n')[0]}</strong>
        <span class="sub mono" title={p.id}>
          #{p.id.slice(0, 8)}…
        </span>
      </header>
      <div class="tally" title={`for ${n(f)}, against ${n(a)}, abstain ${n(ab)} MESH; quorum ${n(q)} MESH`}>
        <span class="for" style={{ width: w(f) }} />
        <span class="against" style={{ width: w(a) }} />
        <span class="abstain" style={{ width: w(ab) }} />
        {q > 0 && <span class="quorum" style={{ left: w(q) }} />}
      </div>
      <p class="legend" data-testid="votes">
        <span class="swatch for" /> for {n(f)} <span class="swatch against" /> against {n(a)}{' '}
        <span class="swatch abstain" /> abstain {n(ab)} MESH{q > 0 && ` · quorum ${n(q)}`}
      </p>
      <Diff changes={p.changes} />
      {p.makers !== null && (
        <div class="sub" data-testid="makers-change">
          {p.makers}
        </div>
      )}
      {p.changes.length === 0 && p.makers === null && (
        <div class="sub">{p.calls.map((c) => `${c.contract}.${c.functionName}(…)`).join(', ')}</div>
      )}
      <div class="sub">{p.summary}</div>
    </article>
  )
}

function Diff({ changes }: { changes: ParamChangeView[] }) {
  return (
    <ul class="diff" data-testid="diff">
      {changes.map((c) => (
        <li key={c.key} data-key={c.key}>
          <span class="mono">{c.key}</span> {c.fromDisplay !== null && <del>{c.fromDisplay}</del>} →{' '}
          <ins>{c.toDisplay}</ins>
        </li>
      ))}
    </ul>
  )
}
