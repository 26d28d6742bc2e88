import type { Clock, Timer } from '../core/clock.js'
import type { Logger } from '../core/logger.js'
import type { NetworkPort, Unsubscribe, Verdict } from '../mesh/network-port.js'
import type { Envelope, WireCodec } from '../mesh/wire-codec.js'
import type { AdTable } from './ad-table.js'
import { ADVERTISEMENT, type Advertisement } from './advertisement.js'

/** Options of {@link Advertiser}. */
export interface AdvertiserInit {
  /** The network's advertisement topic (`adTopic`). */
  topic: string
  /** How often to publish this node's advertisement. */
  refreshMs: number
  /** How long each advertisement is valid; longer than `refreshMs`, so that one lost refresh is harmless. */
  ttlMs: number
  /** This node's advertisement as of now (resources and services can change between refreshes). */
  ad: () => Advertisement
  /**
   * Extra publications after start, in ms from start (default 1, 3 and 7 s): gossip reaches only
   * peers already subscribed, so a node that joins with others repeats itself early instead of
   * leaving them to wait a whole refresh period.
   */
  warmup?: readonly number[]
}

/** What the advertiser uses. */
export interface AdvertiserComponents {
  port: Pick<NetworkPort, 'publish' | 'subscribe'> & Partial<Pick<NetworkPort, 'handle' | 'unhandle'>>
  codec: Pick<WireCodec, 'encode' | 'decode'>
  clock: Clock
  table: AdTable
  logger?: Logger
  /** Called after each of this node's advertisements is published. */
  onPublished?: (seq: number) => void
  /** Called for each advertisement from another node that made it into the table. */
  onAd?: (envelope: Envelope<Advertisement>) => void
  /** Called for each valid advertisement older than the one held (late, out of gossip order). */
  onStaleAd?: (envelope: Envelope<Advertisement>) => void
  /** Called when a periodic publication fails (it is retried at the next period). */
  onError?: (err: unknown) => void
}

/** Request/response protocol for the signed advertisements a node holds (request: empty). */
export const AD_SYNC_PROTOCOL = '/meshwork/ads/1'
/** Largest answer to an ad sync request. */
export const AD_SYNC_MAX_BYTES = 512 * 1024

/**
 * Asks `peer` for the advertisements it holds and puts every one that checks into `table` (the
 * codec checks signature, network, expiry and replay, as for gossip). Returns how many were new.
 */
export async function syncAds(
  port: Pick<NetworkPort, 'request'>,
  peer: string,
  components: { codec: WireCodec; table: AdTable; timeoutMs?: number },
): Promise<number> {
  const bytes = await port.request(peer, AD_SYNC_PROTOCOL, new Uint8Array(), {
    maxResponseBytes: AD_SYNC_MAX_BYTES,
    timeoutMs: components.timeoutMs ?? 5_000,
  })
  let list: unknown
  try {
    list = JSON.parse(new TextDecoder().decode(bytes))
  } catch {
    return 0
  }
  if (!Array.isArray(list)) return 0
  let added = 0
  for (const item of list) {
    const raw = new TextEncoder().encode(JSON.stringify(item))
    // From the envelope's sender, whoever relays it: the codec checks the sender's signature.
    const from = (item as { from?: unknown })?.from
    if (typeof from !== 'string') continue
    const decoded = components.codec.decode(raw, { from })
    if (!decoded.ok || decoded.envelope.type !== ADVERTISEMENT.type) continue
    if (components.table.put(decoded.envelope as Envelope<Advertisement>, raw)) added++
  }
  return added
}

/**
 * Publishes this node's signed advertisement on a period and keeps the table of everyone else's.
 * Every received advertisement goes through the wire codec; what fails is dropped (and counted by
 * the codec) with a `reject` verdict that lowers the relaying peer's gossip score.
 */
export class Advertiser {
  readonly #init: AdvertiserInit
  readonly #c: AdvertiserComponents
  #timer: Timer | undefined
  #unsubscribe: Unsubscribe | undefined
  #running = false
  #startedAt = 0
  #warmup: number[] = []

  constructor(init: AdvertiserInit, components: AdvertiserComponents) {
    if (init.ttlMs <= init.refreshMs)
      throw new RangeError('the advertisement ttl must exceed the refresh period')
    this.#init = init
    this.#c = components
  }

  /** Subscribes to the topic and publishes now, then every `refreshMs`. */
  async start(): Promise<void> {
    if (this.#running) return
    this.#running = true
    this.#unsubscribe = this.#c.port.subscribe(this.#init.topic, (m) => this.#receive(m.data, m.from))
    // Newcomers (a builder's client, a fresh node) ask for the table instead of waiting for a refresh.
    this.#c.port.handle?.(AD_SYNC_PROTOCOL, async () => this.#syncAnswer(), { maxRequestBytes: 64 })
    this.#startedAt = this.#c.clock.now()
    this.#warmup = [...(this.#init.warmup ?? [1_000, 3_000, 7_000])]
      .filter((t) => t < this.#init.refreshMs)
      .sort((a, b) => a - b)
    await this.publishNow()
    this.#schedule()
  }

  /** Stops publishing and receiving. */
  stop(): void {
    this.#running = false
    this.#timer?.cancel()
    this.#timer = undefined
    this.#unsubscribe?.()
    this.#unsubscribe = undefined
    this.#c.port.unhandle?.(AD_SYNC_PROTOCOL)
  }

  /** The signed advertisements this node holds (its own first), as a JSON array, within the cap. */
  #syncAnswer(): Uint8Array {
    this.#c.table.prune()
    const parts: string[] = []
    let size = 2
    const raws = [this.#own, ...this.#c.table.list().map((a) => a.raw)]
    for (const raw of raws) {
      if (raw === undefined) continue
      const text = new TextDecoder().decode(raw)
      if (size + text.length + 1 > AD_SYNC_MAX_BYTES) break
      parts.push(text)
      size += text.length + 1
    }
    return new TextEncoder().encode(`[${parts.join(',')}]`)
  }

  #own: Uint8Array | undefined

  /** Publishes this node's advertisement once, now. */
  async publishNow(): Promise<void> {
    const { bytes, seq } = this.#c.codec.encode(ADVERTISEMENT, this.#init.ad(), { ttlMs: this.#init.ttlMs })
    this.#own = bytes
    await this.#c.port.publish(this.#init.topic, bytes)
    this.#c.onPublished?.(seq)
  }

  #schedule(): void {
    if (!this.#running) return
    const next = this.#warmup.shift()
    const delay =
      next === undefined ? this.#init.refreshMs : Math.max(0, this.#startedAt + next - this.#c.clock.now())
    this.#timer = this.#c.clock.setTimer(delay, () => {
      this.#c.table.prune()
      this.publishNow()
        .catch((err: unknown) => {
          this.#c.logger?.warn({ err }, 'failed to publish the advertisement')
          this.#c.onError?.(err)
        })
        .finally(() => this.#schedule())
    })
  }

  #receive(data: Uint8Array, from: string): Verdict {
    const decoded = this.#c.codec.decode(data, { from })
    if (!decoded.ok) return decoded.verdict
    if (decoded.envelope.type !== ADVERTISEMENT.type) return 'reject'
    const envelope = decoded.envelope as Envelope<Advertisement>
    // An older advertisement than the one held (late, out of gossip order) is not passed on.
    if (!this.#c.table.put(envelope, data)) {
      this.#c.onStaleAd?.(envelope)
      return 'ignore'
    }
    this.#c.onAd?.(envelope)
    return 'accept'
  }
}
