import type { NetworkPort, Unsubscribe, Verdict } from '../mesh/network-port.js'
import type { WireCodec } from '../mesh/wire-codec.js'
import { storageTopic } from '../storage/challenge.js'
import { STORAGE_RECEIPT, type StorageReceiptBody } from '../storage/protocol.js'

/** Most shards a feed keeps for one holder, and most holders it keeps shards of. */
export const MAX_FEED_SHARDS_PER_HOLDER = 10_000
export const MAX_FEED_HOLDERS = 10_000

/** A shard as a holder's signed receipt commits to it, with the epochs it is kept (challenged) in. */
export interface FeedShard {
  cid: string
  shard: number
  bytes: number
  /** The first epoch it is challenged in (the one after it was stored), and the last. */
  fromEpoch: number
  untilEpoch: number
}

/** What {@link StorageFeed} uses. */
export interface StorageFeedComponents {
  port: Pick<NetworkPort, 'subscribe'>
  /** Decodes and checks signed messages; must know `STORAGE_RECEIPT` (the `STORAGE_MESSAGES`). */
  codec: Pick<WireCodec, 'decode'>
  /** The network id (the storage topic's name). */
  network: string
  /** The epoch a time (unix ms, the holder's `storedAt`) falls in. */
  epochAt(ms: number): number
}

/**
 * The shards an explorer shows per node: follows the storage topic, where holders gossip the
 * receipts they sign for every shard they take (the same receipts verifiers learn what to challenge
 * from), and keeps each holder's unexpired shards, bounded. Receipts signed by anyone but the peer
 * that published them are refused, as verifiers refuse them. It knows the shards stored since it
 * started listening: a long-running explorer starts it with the network.
 */
export class StorageFeed {
  readonly #c: StorageFeedComponents
  readonly #held = new Map<string, Map<string, FeedShard>>()
  #unsubscribe: Unsubscribe | undefined

  constructor(components: StorageFeedComponents) {
    this.#c = components
  }

  /** Starts listening on the storage topic. */
  start(): void {
    if (this.#unsubscribe !== undefined) return
    this.#unsubscribe = this.#c.port.subscribe(storageTopic(this.#c.network), (m) =>
      this.take(m.data, m.from),
    )
  }

  /** Takes one gossiped message published by `from` (a storage receipt is kept; anything else ignored). */
  take(data: Uint8Array, from: string): Verdict {
    const decoded = this.#c.codec.decode(data)
    if (!decoded.ok) return decoded.verdict
    // Byte receipts are the downloaders' (verifiers count them); they travel on the same topic.
    if (decoded.envelope.type !== STORAGE_RECEIPT.type) return 'ignore'
    if (decoded.envelope.from !== from) return 'reject'
    const r = decoded.envelope.body as StorageReceiptBody
    let shards = this.#held.get(from)
    if (shards === undefined) {
      if (this.#held.size >= MAX_FEED_HOLDERS) return 'ignore'
      shards = new Map()
      this.#held.set(from, shards)
    }
    const key = `${r.cid}|${r.shard}`
    if (!shards.has(key) && shards.size >= MAX_FEED_SHARDS_PER_HOLDER) return 'ignore'
    const fromEpoch = this.#c.epochAt(r.storedAt) + 1
    const untilEpoch = fromEpoch + r.epochs - 1
    const known = shards.get(key)
    // A newer receipt of the same shard (a renewal) replaces it, as in the verifiers' store.
    if (known === undefined || untilEpoch >= known.untilEpoch)
      shards.set(key, { cid: r.cid, shard: r.shard, bytes: r.bytes, fromEpoch, untilEpoch })
    return 'accept'
  }

  /** The shards `holder` keeps in `epoch` or later (stored, not yet expired), the ones kept longest first. */
  held(holder: string, epoch: number): FeedShard[] {
    const shards = this.#held.get(holder)
    if (shards === undefined) return []
    for (const [key, s] of shards) if (s.untilEpoch < epoch) shards.delete(key)
    return [...shards.values()].sort(
      (a, b) => b.untilEpoch - a.untilEpoch || (a.cid < b.cid ? -1 : a.cid > b.cid ? 1 : a.shard - b.shard),
    )
  }

  /** Stops listening. */
  close(): void {
    this.#unsubscribe?.()
    this.#unsubscribe = undefined
  }
}
