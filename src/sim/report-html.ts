import type { SimResult } from './simulate.js'

const COLOURS = ['#1b7f3b', '#c0392b', '#2c6fbb', '#b9770e', '#7d3c98', '#117a65', '#566573']

const escapeHtml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

const fmt = (x: number, digits = 0) =>
  x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

/** A line chart of each cohort's share of what was paid, per epoch (0 to 100%). */
function sharesChart(result: SimResult): string {
  const w = 640
  const h = 240
  const pad = { l: 48, r: 120, t: 12, b: 32 }
  const cohorts = [...new Set(result.perEpoch.flatMap((e) => Object.keys(e.shares)))].sort()
  const n = Math.max(1, result.perEpoch.length - 1)
  const x = (i: number) => pad.l + ((w - pad.l - pad.r) * i) / n
  const y = (share: number) => pad.t + (h - pad.t - pad.b) * (1 - share)
  const parts: string[] = []
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(
      `<line x1="${pad.l}" x2="${w - pad.r}" y1="${y(tick)}" y2="${y(tick)}" stroke="#ddd"/>`,
      `<text x="${pad.l - 6}" y="${y(tick) + 4}" text-anchor="end">${tick * 100}%</text>`,
    )
  }
  result.perEpoch.forEach((e, i) => {
    if (result.perEpoch.length <= 30 || i % Math.ceil(result.perEpoch.length / 30) === 0)
      parts.push(`<text x="${x(i)}" y="${h - pad.b + 16}" text-anchor="middle">${e.epoch}</text>`)
  })
  cohorts.forEach((cohort, k) => {
    const colour = COLOURS[k % COLOURS.length]
    const points = result.perEpoch.map((e, i) => `${x(i).toFixed(1)},${y(e.shares[cohort] ?? 0).toFixed(1)}`)
    parts.push(
      `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${points.join(' ')}"/>`,
      `<text x="${w - pad.r + 8}" y="${pad.t + 14 + 16 * k}" fill="${colour}">${escapeHtml(cohort)}</text>`,
    )
  })
  parts.push(`<text x="${(pad.l + w - pad.r) / 2}" y="${h - 2}" text-anchor="middle">epoch</text>`)
  return `<svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="share of emission per cohort">${parts.join('')}</svg>`
}

/** Bars of each cohort's net (and the attacker's twin), MESH. */
function netChart(result: SimResult): string {
  const bars: { label: string; value: number }[] = Object.entries(result.cohorts).map(([name, c]) => ({
    label: `${name} (net)`,
    value: c.net,
  }))
  if (result.attack) {
    bars.push({ label: `${result.attack.cohort} if honest (twin)`, value: result.attack.twinNet })
    bars.push({ label: `${result.attack.cohort}: attack profit`, value: result.attack.profit })
  }
  const w = 640
  const rowH = 26
  const h = bars.length * rowH + 16
  const labelW = 230
  const max = Math.max(1, ...bars.map((b) => Math.abs(b.value)))
  const zero = labelW + (w - labelW - 90) / 2
  const scale = (w - labelW - 90) / 2 / max
  const rows = bars.map((b, i) => {
    const y = 8 + i * rowH
    const len = Math.abs(b.value) * scale
    const x = b.value >= 0 ? zero : zero - len
    const colour = b.value >= 0 ? '#1b7f3b' : '#c0392b'
    return (
      `<text x="${labelW - 8}" y="${y + 15}" text-anchor="end">${escapeHtml(b.label)}</text>` +
      `<rect x="${x.toFixed(1)}" y="${y + 3}" width="${Math.max(1, len).toFixed(1)}" height="${rowH - 8}" fill="${colour}"/>` +
      `<text x="${(b.value >= 0 ? x + len + 4 : x - 4).toFixed(1)}" y="${y + 15}" text-anchor="${b.value >= 0 ? 'start' : 'end'}">${fmt(b.value)}</text>`
    )
  })
  return `<svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="net per cohort"><line x1="${zero}" x2="${zero}" y1="0" y2="${h}" stroke="#888"/>${rows.join('')}</svg>`
}

/** A timeline of the run's epochs with the detection epoch marked. */
function detectionChart(result: SimResult): string {
  const w = 640
  const h = 56
  const n = Math.max(1, result.epochs)
  const cell = (w - 20) / n
  const detected = result.attack?.detectionEpoch
  const cells = Array.from({ length: n }, (_, e) => {
    const colour = detected === null || detected === undefined ? '#eee' : e >= detected ? '#f5b7b1' : '#eee'
    return `<rect x="${(10 + e * cell).toFixed(1)}" y="10" width="${Math.max(1, cell - 2).toFixed(1)}" height="20" fill="${colour}"/>`
  })
  const label =
    result.attack === null
      ? 'no attack in this scenario'
      : detected === null
        ? 'never detected: the attack was paid like honest work in every epoch'
        : `detected in epoch ${detected} (the protocol paid it less than its twin, or refused it)`
  return `<svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="detection time">${cells.join('')}<text x="10" y="48">${escapeHtml(label)}</text></svg>`
}

/**
 * The report of a run as one self-contained HTML page (inline SVG charts, no script, nothing fetched):
 * emission share per cohort over the epochs, each cohort's net and the attacker's profit, and when
 * the attack was detected.
 */
export function renderReport(result: SimResult): string {
  const attack = result.attack
  const verdict =
    attack === null
      ? ''
      : `<p class="verdict ${attack.profit < 0 ? 'ok' : 'bad'}">Attacker profit: <b>${fmt(attack.profit, 2)} MESH</b> (net ${fmt(attack.net, 2)} with the attack, ${fmt(attack.twinNet, 2)} for the same machines and stake run honestly): the attack ${attack.profit < 0 ? 'does not pay' : '<b>pays</b>'}.${attack.forgedRoots.attempted > 0 ? ` Forged roots: ${attack.forgedRoots.attempted} submitted, ${attack.forgedRoots.accepted} accepted.` : ''}</p>`
  const cohortRows = Object.entries(result.cohorts)
    .map(
      ([name, c]) =>
        `<tr><td>${escapeHtml(name)}</td><td>${c.identities}</td><td>${c.machines}</td><td>${fmt(c.rewards, 2)}</td><td>${fmt(c.payments, 2)}</td><td>${fmt(c.runningCosts, 2)}</td><td>${fmt(c.fees, 2)}</td><td>${fmt(c.slashed, 2)}</td><td>${fmt(c.net, 2)}</td></tr>`,
    )
    .join('')
  const epochRows = result.perEpoch
    .map(
      (e) =>
        `<tr><td>${e.epoch}</td><td>${e.registered}</td><td>${e.scored}</td><td>${fmt(e.paid, 2)}</td><td>${Object.entries(
          e.pools,
        )
          .map(([k, v]) => `${escapeHtml(k)} ${fmt(v, 0)}`)
          .join(', ')}</td><td>${Object.entries(e.shares)
          .map(([k, v]) => `${escapeHtml(k)} ${(v * 100).toFixed(2)}%`)
          .join(', ')}</td><td><code>${e.root.slice(0, 18)}…</code></td></tr>`,
    )
    .join('')
  const storage =
    result.storage === undefined
      ? ''
      : `<p>Storage: ${result.storage.files} files stored in ${result.storage.placed} shards; verifiers rebuilt ${result.storage.repaired} shards elsewhere; ${result.storage.intact} of ${result.storage.checked} files read back intact in the last epoch.</p>`
  const hw = Object.entries(result.network.hardware)
    .map(([k, v]) => `${escapeHtml(k)} ${v}`)
    .join(', ')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Meshwork simulation: ${escapeHtml(result.scenario)}</title>
<style>body{font:14px/1.45 system-ui,sans-serif;max-width:760px;margin:2em auto;color:#222}svg text{font:12px system-ui,sans-serif}table{border-collapse:collapse;margin:.5em 0}td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}.verdict{padding:.6em;border-radius:4px}.ok{background:#e9f7ef}.bad{background:#fdedec}</style></head>
<body>
<h1>Scenario <code>${escapeHtml(result.scenario)}</code></h1>
<p>${escapeHtml(result.summary)}.</p>
<p>${result.nodes} nodes (${result.network.identities} identities on ${result.network.machines} machines in ${result.network.cells} H3 cells around ${result.network.centres} cities; ${hw}), ${result.verifiers} verifiers, ${result.epochs} epochs, seed ${result.seed}, engine <code>${result.engine}</code>. Honest operators received <b>${(result.honestShare * 100).toFixed(2)}%</b> of what was paid.</p>
${verdict}
${storage}
<h2>Emission share per cohort</h2>
${sharesChart(result)}
<h2>Net per cohort, and the attacker's profit (MESH)</h2>
${netChart(result)}
<h2>Detection</h2>
${detectionChart(result)}
<h2>Cohorts (MESH over the run)</h2>
<table><tr><th>cohort</th><th>identities</th><th>machines</th><th>rewards</th><th>payments</th><th>running costs</th><th>fees</th><th>slashed</th><th>net</th></tr>${cohortRows}</table>
<h2>Epochs</h2>
<table><tr><th>epoch</th><th>registered</th><th>scored</th><th>paid</th><th>pools</th><th>shares</th><th>root</th></tr>${epochRows}</table>
<p>How these figures are computed: docs/simulation.md.</p>
</body></html>
`
}
