import { Counter, Gauge, Registry } from 'prom-client'
import { type RejectReason, rejectReasons } from '../mesh/wire-codec.js'

/** Prometheus metrics of one node (GET /metrics on its ops port). */
export interface NodeMetrics {
  readonly registry: Registry
  messageIn(kind: string): void
  messageOut(kind: string): void
  rejected(reason: RejectReason): void
  published(seq: number): void
}

/** Creates the node's metrics on a registry of its own; gauges are read when scraped. */
export function createNodeMetrics(sources: {
  peers: () => number
  ads: () => number
  startedAt: number
  now: () => number
}): NodeMetrics {
  const registry = new Registry()
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read())
      },
    })
  gauge('meshwork_node_peers', 'Connected peers', sources.peers)
  gauge('meshwork_node_ads', 'Unexpired advertisements of other nodes', sources.ads)
  gauge(
    'meshwork_node_uptime_seconds',
    'Seconds since the node started',
    () => (sources.now() - sources.startedAt) / 1000,
  )
  const adSeq = new Gauge({
    name: 'meshwork_node_ad_seq',
    help: 'Sequence number of the last published advertisement',
    registers: [registry],
  })
  const inbound = new Counter({
    name: 'meshwork_node_messages_in_total',
    help: 'Wire messages received, by kind',
    labelNames: ['kind'] as const,
    registers: [registry],
  })
  const outbound = new Counter({
    name: 'meshwork_node_messages_out_total',
    help: 'Wire messages sent, by kind',
    labelNames: ['kind'] as const,
    registers: [registry],
  })
  const rejected = new Counter({
    name: 'meshwork_node_messages_rejected_total',
    help: 'Wire messages dropped, by reason',
    labelNames: ['reason'] as const,
    registers: [registry],
  })
  for (const reason of rejectReasons) rejected.inc({ reason }, 0)
  return {
    registry,
    messageIn: (kind) => inbound.inc({ kind }),
    messageOut: (kind) => outbound.inc({ kind }),
    rejected: (reason) => rejected.inc({ reason }),
    published: (seq) => {
      adSeq.set(seq)
      outbound.inc({ kind: 'ad' })
    },
  }
}
