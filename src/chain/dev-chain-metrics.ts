import { Counter, Gauge, Histogram, Registry } from 'prom-client'

/** At most this many distinct method labels; the rest count as `other`, so no client can blow up the series. */
const MAX_METHOD_LABELS = 64

/** Prometheus metrics of one embedded chain (served at GET /metrics next to its JSON-RPC endpoint). */
export interface DevChainMetrics {
  readonly registry: Registry
  /** Records one JSON-RPC request. */
  request(method: string, outcome: 'ok' | 'error', seconds: number): void
  /** Records one journal append. */
  journaled(): void
}

/** Creates the metrics on a registry of their own (no global state); `head` is read at each scrape. */
export function createDevChainMetrics(sources: { head: () => Promise<number> }): DevChainMetrics {
  const registry = new Registry()
  const requests = new Counter({
    name: 'meshwork_chain_rpc_requests_total',
    help: 'JSON-RPC requests by method and outcome',
    labelNames: ['method', 'outcome'] as const,
    registers: [registry],
  })
  const duration = new Histogram({
    name: 'meshwork_chain_rpc_duration_seconds',
    help: 'JSON-RPC request latency',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  })
  const journal = new Counter({
    name: 'meshwork_chain_journal_entries_total',
    help: 'State-changing requests appended to the --state journal',
    registers: [registry],
  })
  new Gauge({
    name: 'meshwork_chain_head_block',
    help: 'Head block number',
    registers: [registry],
    async collect() {
      this.set(await sources.head())
    },
  })
  const seen = new Set<string>()
  return {
    registry,
    request(method, outcome, seconds) {
      let label = /^[a-z0-9]{1,16}_[A-Za-z0-9]{1,48}$/.test(method) ? method : 'other'
      if (label !== 'other' && !seen.has(label)) {
        if (seen.size >= MAX_METHOD_LABELS) label = 'other'
        else seen.add(label)
      }
      requests.inc({ method: label, outcome })
      duration.observe(seconds)
    },
    journaled: () => journal.inc(),
  }
}
