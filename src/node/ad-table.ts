import type { Clock } from '../core/clock.js'
import type { Envelope } from '../mesh/wire-codec.js'
import type { Advertisement } from './advertisement.js'

/** A known node: its latest verified advertisement. */
export interface KnownAd {
  peerId: string
  seq: number
  expiresAt: number
  receivedAt: number
  ad: Advertisement
  /** The signed envelope's bytes as received, passed on to peers that ask (`/meshwork/ads/1`). */
  raw?: Uint8Array
}

/**
 * The live table of other nodes' advertisements: newest per peer, dropped when it expires, bounded
 * in size (when full, the entry closest to expiry makes room).
 */
export class AdTable {
  readonly #ads = new Map<string, KnownAd>()
  readonly #clock: Pick<Clock, 'now'>
  readonly #max: number

  constructor(init: { clock: Pick<Clock, 'now'>; maxEntries?: number }) {
    this.#clock = init.clock
    this.#max = init.maxEntries ?? 10_000
  }

  /** Stores a verified advertisement unless an equal or newer one from that peer is known. */
  put(envelope: Envelope<Advertisement>, raw?: Uint8Array): boolean {
    const known = this.#ads.get(envelope.from)
    if (known && known.seq >= envelope.seq) return false
    if (!known && this.#ads.size >= this.#max) {
      this.prune()
      if (this.#ads.size >= this.#max) {
        let soonest: KnownAd | undefined
        for (const a of this.#ads.values()) if (!soonest || a.expiresAt < soonest.expiresAt) soonest = a
        if (soonest) this.#ads.delete(soonest.peerId)
      }
    }
    this.#ads.set(envelope.from, {
      peerId: envelope.from,
      seq: envelope.seq,
      expiresAt: envelope.exp,
      receivedAt: this.#clock.now(),
      ad: envelope.body,
      ...(raw === undefined ? {} : { raw }),
    })
    return true
  }

  /** Drops expired entries; returns how many. */
  prune(): number {
    const now = this.#clock.now()
    let dropped = 0
    for (const [peer, a] of this.#ads) {
      if (a.expiresAt <= now) {
        this.#ads.delete(peer)
        dropped++
      }
    }
    return dropped
  }

  get(peerId: string): KnownAd | undefined {
    const a = this.#ads.get(peerId)
    return a && a.expiresAt > this.#clock.now() ? a : undefined
  }

  /** Every unexpired advertisement. */
  list(): KnownAd[] {
    const now = this.#clock.now()
    return [...this.#ads.values()].filter((a) => a.expiresAt > now)
  }

  get size(): number {
    return this.list().length
  }
}
