import { Gauge, type Registry } from 'prom-client'
import type { StorageCounts } from './holder.js'

/**
 * The storage service's Prometheus metrics on a node's registry, read when scraped: shards and bytes
 * held, pieces and bytes served, chunk proofs answered and requests refused.
 */
export function registerStorageMetrics(registry: Registry, counts: () => StorageCounts): void {
  const gauge = (name: string, help: string, read: (c: StorageCounts) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read(counts()))
      },
    })
  gauge('meshwork_node_storage_shards', 'Shards of builders’ files held', (c) => c.shards)
  gauge('meshwork_node_storage_bytes', 'Bytes of shards held', (c) => c.bytes)
  gauge(
    'meshwork_node_storage_pieces_served',
    'Pieces served to downloaders since the node started',
    (c) => c.piecesServed,
  )
  gauge(
    'meshwork_node_storage_bytes_served',
    'Bytes served to downloaders since the node started',
    (c) => c.bytesServed,
  )
  gauge(
    'meshwork_node_storage_proofs_served',
    'Chunk proofs answered since the node started',
    (c) => c.proofsServed,
  )
  gauge(
    'meshwork_node_storage_byte_receipts',
    'Downloaders’ signed byte receipts taken and gossiped since the node started',
    (c) => c.receiptsServed,
  )
  gauge(
    'meshwork_node_storage_relay_receipts',
    'Byte receipts signed to circuit relays for pieces uploaded through them, since the node started',
    (c) => c.relayReceipts,
  )
  gauge('meshwork_node_storage_refused', 'Storage requests refused since the node started', (c) => c.refused)
  gauge(
    'meshwork_node_storage_expired',
    'Shards dropped since the node started because the epochs of their receipts were over',
    (c) => c.expired,
  )
  gauge(
    'meshwork_node_storage_unpaid',
    'Paid shards dropped since the node started because their rent stopped',
    (c) => c.unpaid,
  )
}
