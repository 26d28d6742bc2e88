import { Counter, Gauge, type Registry } from 'prom-client'
import type { RelayCounts } from './relay-service.js'

/**
 * The relay service's Prometheus metrics on a node's registry, read when scraped: reservations held
 * now, and counters of downloaders' byte receipts taken, the relayed bytes they receipt and the
 * receipts refused (malformed, forged, replayed or naming another node).
 */
export function registerRelayMetrics(registry: Registry, counts: () => RelayCounts): void {
  new Gauge({
    name: 'meshwork_node_relay_reservations',
    help: 'Circuit relay reservations held by peers behind NAT',
    registers: [registry],
    collect() {
      this.set(counts().reservations)
    },
  })
  const counter = (name: string, help: string, read: (c: RelayCounts) => number) => {
    let last = 0
    return new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const now = read(counts())
        if (now > last) this.inc(now - last)
        last = now
      },
    })
  }
  counter(
    'meshwork_node_relay_receipts_total',
    'Downloaders’ signed byte receipts for relayed bytes, taken and gossiped',
    (c) => c.receipts,
  )
  counter(
    'meshwork_node_relay_bytes_total',
    'Relayed bytes that downloaders receipted (each session counted once, at its latest receipt)',
    (c) => c.bytes,
  )
  counter(
    'meshwork_node_relay_receipts_refused_total',
    'Relay receipts refused: malformed, forged, replayed or naming another node',
    (c) => c.refused,
  )
}
