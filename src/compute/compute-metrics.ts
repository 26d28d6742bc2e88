import { Gauge, type Registry } from 'prom-client'

/**
 * The compute service's Prometheus metrics on a node's registry, read when scraped: jobs answered by
 * outcome, payment events (admitted, billed, vouchers, redeems, refusals by code) and what builders'
 * vouchers hold that is not redeemed yet.
 */
export function registerComputeMetrics(
  registry: Registry,
  sources: {
    jobs: () => ReadonlyMap<string, number>
    payments?: () => ReadonlyMap<string, number>
    unredeemed?: () => bigint
  },
): void {
  const byLabel = (name: string, help: string, label: string, read: () => ReadonlyMap<string, number>) =>
    new Gauge({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        for (const [value, n] of read()) this.set({ [label]: value }, n)
      },
    })
  byLabel(
    'meshwork_node_jobs',
    'Jobs answered since the node started, by outcome (ok or an error code)',
    'outcome',
    sources.jobs,
  )
  const { payments, unredeemed } = sources
  if (payments)
    byLabel(
      'meshwork_node_payments',
      'Payment events since the node started (admitted, billed, voucher, redeemed, refusal codes)',
      'event',
      payments,
    )
  if (unredeemed)
    new Gauge({
      name: 'meshwork_node_payments_unredeemed_mesh',
      help: "MESH in builders' vouchers not redeemed on-chain yet",
      registers: [registry],
      collect() {
        this.set(Number(unredeemed()) / 1e18)
      },
    })
}
