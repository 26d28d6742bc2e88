import type { Logger } from '../core/logger.js'
import type { NetworkPort } from '../mesh/network-port.js'
import type { WireCodec } from '../mesh/wire-codec.js'
import { repairFile } from '../storage/client.js'
import type { RegistrySnapshot } from './chain-port.js'
import type { VerifierStore } from './store.js'

/**
 * Verifiers repair: after an epoch's storage challenges, one verifier (the epoch's, in rotation over
 * the active verifiers sorted by peer id, so that a file is not rebuilt three times over) rebuilds
 * every shard whose holder failed all of its challenges that epoch, from any K other shards, onto a
 * registered node that holds nothing of the file (`repairFile`: no key needed). The failing holder
 * keeps failing its challenges and earns nothing from the storage pool until its receipt runs out.
 */
/** The parts a storage repairer works with. */
export interface StorageRepairerComponents {
  port: Pick<NetworkPort, 'peerId' | 'request'>
  /** Decodes the new holders' receipts (knows STORAGE_RECEIPT). */
  codec: WireCodec
  store: VerifierStore
  logger: Logger
}

export class StorageRepairer {
  readonly #c: StorageRepairerComponents
  /** Shards rebuilt and files that could not be repaired (tests and metrics). */
  readonly counts = { repaired: 0, failed: 0 }
  /** Files being repaired now: a repair still running when the next epoch ends is not started twice. */
  readonly #repairing = new Set<string>()

  constructor(components: StorageRepairerComponents) {
    this.#c = components
  }

  /** Whether this verifier repairs for `epoch`. */
  isRepairer(epoch: number, registry: RegistrySnapshot): boolean {
    const sorted = registry.verifiers.map((v) => v.peerId).sort()
    return sorted.length > 0 && sorted[epoch % sorted.length] === this.#c.port.peerId
  }

  /** Repairs the files of shards that failed every challenge of this verifier in `epoch`. */
  async afterEpoch(epoch: number, registry: RegistrySnapshot): Promise<number> {
    if (!this.isRepairer(epoch, registry)) return 0
    const failed = this.#c.store.failedShards(epoch)
    const byCid = new Map<string, Set<string>>()
    for (const f of failed) byCid.set(f.cid, (byCid.get(f.cid) ?? new Set()).add(f.holder))
    const candidates = registry.nodes.map((n) => n.peerId)
    let rebuilt = 0
    for (const [cid, holders] of byCid) {
      if (this.#repairing.has(cid)) continue
      this.#repairing.add(cid)
      try {
        const r = await repairFile(
          { port: this.#c.port, codec: this.#c.codec, logger: this.#c.logger },
          candidates,
          cid,
          {
            exclude: [...holders],
          },
        )
        rebuilt += r.repaired.length
        this.counts.repaired += r.repaired.length
        for (const x of r.repaired)
          this.#c.logger.info(
            { epoch, cid, shard: x.shard, holder: x.holder, failed: [...holders] },
            'shard repaired',
          )
      } catch (err) {
        this.counts.failed++
        this.#c.logger.warn({ err, epoch, cid }, 'could not repair a file')
      } finally {
        this.#repairing.delete(cid)
      }
    }
    return rebuilt
  }
}
