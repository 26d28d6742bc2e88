import type { Clock } from '../core/clock.js'
import { InvalidArgumentError } from '../core/errors.js'
import type { Logger } from '../core/logger.js'
import { type MeshErrorCode, meshError } from './errors.js'
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_REQUEST_TIMEOUT_MS,
  type GossipHandler,
  type GossipMessage,
  type HandleOptions,
  type NetworkPort,
  type RequestHandler,
  type RequestOptions,
  type Verdict,
} from './network-port.js'

/** How a message travels one way between two peers. */
export interface LinkProfile {
  /** Base one-way delay, in ms. */
  latencyMs: number
  /** Extra delay drawn uniformly from [0, jitterMs] for each message, in ms. */
  jitterMs: number
  /** Chance that a message is lost, 0 to 1 (default: the network's `lossRate`). */
  lossRate?: number
}

/** Gives the profile of the link from one peer to another, e.g. from their great-circle distance. */
export type LatencyModel = (from: string, to: string) => LinkProfile

/** The link every pair of peers has unless a {@link LatencyModel} or `setLink` says otherwise. */
export const DEFAULT_LINK_PROFILE: Readonly<LinkProfile> = Object.freeze({ latencyMs: 5, jitterMs: 2 })

/** Options of a {@link SimNetwork}. */
export interface SimNetworkInit {
  /** Drives jitter and loss: the same seed and the same calls give the same events at the same times. */
  seed: number | bigint
  /** Virtual time; pass a `VirtualClock` for deterministic runs. */
  clock: Pick<Clock, 'now' | 'setTimer'>
  /** Link profiles by pair (default {@link DEFAULT_LINK_PROFILE} for every pair). */
  latency?: LatencyModel
  /** Loss rate of links whose profile names none (default 0). */
  lossRate?: number
  /** Warned when a handler throws. */
  logger?: Pick<Logger, 'warn'>
}

/** What the network has carried so far. */
export interface SimNetworkStats {
  /** Messages (gossip, requests, responses, pings) that reached a receiver who still wanted them. */
  delivered: number
  /** Messages lost to the loss model. */
  dropped: number
  /** Messages that arrived after their receiver closed, unsubscribed, disconnected or gave up. */
  undeliverable: number
  /** Gossip `reject` verdicts, by the peer that published the message (the gossipsub penalty). */
  rejected: Record<string, number>
}

/** One request or ping in flight, as its caller waits for it. */
interface Exchange {
  readonly peer: string
  settled: boolean
  fail(err: unknown): void
}

interface PeerState {
  readonly id: string
  closed: boolean
  readonly subscriptions: Map<string, GossipHandler>
  readonly handlers: Map<string, { handler: RequestHandler; maxRequestBytes: number }>
  readonly exchanges: Set<Exchange>
}

/** What a server sends back: the response bytes, or an error the caller turns into a MeshError. */
type Reply = { data: Uint8Array } | { code: MeshErrorCode; message: string }

/** The protocol id `rtt` uses; served by every port, outside the handler table. */
const PING = Symbol('ping')

/** A copy that shares no memory with `bytes` (and is a plain Uint8Array even for a Buffer). */
const copyOf = (bytes: Uint8Array) => new Uint8Array(bytes)

/**
 * A network that lives in memory and in virtual time: ports created on it pass the same compliance
 * suite as the libp2p port, so node, verifier and market code runs here unchanged, as fast as the
 * CPU allows and deterministically from a seed.
 *
 * Ports are connected pairwise as soon as they exist. Gossip goes straight to each connected
 * subscriber (no multi-hop mesh), once. Every message (gossip, request, response, ping) crosses a
 * link after its latency plus jitter, with its own loss draw; a lost request or response never
 * arrives, so the caller times out. Messages on one directed link arrive in the order they were
 * sent, as over one libp2p connection.
 *
 * @example
 * ```ts
 * const clock = new VirtualClock()
 * const net = new SimNetwork({ seed: 1, clock })
 * const [a, b] = [net.createPort('a'), net.createPort('b')]
 * b.handle('/echo/1', async (req) => req)
 * const reply = a.request('b', '/echo/1', bytes)
 * await clock.advance(20) // reply has resolved after one round trip (about 10-14 ms)
 * ```
 */
export class SimNetwork {
  readonly #clock: Pick<Clock, 'now' | 'setTimer'>
  readonly #latency: LatencyModel
  readonly #lossRate: number
  readonly #logger: Pick<Logger, 'warn'> | undefined
  readonly #random: Xoshiro128
  /** Open ports by peer id, in creation order. */
  readonly #peers = new Map<string, PeerState>()
  /** Pairs cut by `disconnect`, both ways. */
  readonly #cuts = new Map<string, Set<string>>()
  /** `setLink` overrides, both ways. */
  readonly #links = new Map<string, Map<string, LinkProfile>>()
  /** When the last message on each directed link arrives (keeps each link in order). */
  readonly #lastArrival = new Map<string, number>()
  readonly #stats = { delivered: 0, dropped: 0, undeliverable: 0 }
  readonly #rejected = new Map<string, number>()

  constructor(init: SimNetworkInit) {
    this.#clock = init.clock
    this.#latency = init.latency ?? (() => DEFAULT_LINK_PROFILE)
    this.#lossRate = init.lossRate ?? 0
    checkRate(this.#lossRate, 'lossRate')
    this.#logger = init.logger
    this.#random = new Xoshiro128(seedOf(init.seed))
  }

  /** Opens a port for `peerId` (any non-empty string), connected to every other open port. */
  createPort(peerId: string): NetworkPort {
    if (peerId === '') throw new InvalidArgumentError('a peer id must not be empty')
    if (this.#peers.has(peerId)) {
      throw new InvalidArgumentError(`peer ${peerId} already has an open port`, { details: { peerId } })
    }
    const self: PeerState = {
      id: peerId,
      closed: false,
      subscriptions: new Map(),
      handlers: new Map(),
      exchanges: new Set(),
    }
    this.#peers.set(peerId, self)
    const closed = () => meshError('PORT_CLOSED', `the port of ${peerId} is closed`, { details: { peerId } })
    return {
      peerId,
      publish: async (topic, data) => {
        if (self.closed) throw closed()
        this.#publish(self, topic, data)
      },
      subscribe: (topic, handler) => {
        if (self.closed) throw closed()
        if (self.subscriptions.has(topic)) {
          throw new InvalidArgumentError(`${peerId} already subscribes to ${topic}`, { details: { topic } })
        }
        self.subscriptions.set(topic, handler)
        return () => {
          if (self.subscriptions.get(topic) === handler) self.subscriptions.delete(topic)
        }
      },
      handle: (protocol, handler, options: HandleOptions = {}) => {
        if (self.closed) throw closed()
        if (self.handlers.has(protocol)) {
          throw new InvalidArgumentError(`${peerId} already handles ${protocol}`, { details: { protocol } })
        }
        self.handlers.set(protocol, {
          handler,
          maxRequestBytes: options.maxRequestBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
        })
      },
      unhandle: (protocol) => {
        self.handlers.delete(protocol)
      },
      request: async (peer, protocol, data, options = {}) => {
        if (self.closed) throw closed()
        return this.#exchange(self, peer, protocol, data, options)
      },
      rtt: async (peer, options = {}) => {
        if (self.closed) throw closed()
        const start = this.#clock.now()
        await this.#exchange(self, peer, PING, new Uint8Array(), options)
        return this.#clock.now() - start
      },
      peers: () => this.#neighbours(self).map((p) => p.id),
      topicPeers: (topic) =>
        this.#neighbours(self)
          .filter((p) => p.subscriptions.has(topic))
          .map((p) => p.id),
      close: async () => {
        this.#close(self)
      },
    }
  }

  /** Restores the link between `a` and `b` (both ways) after {@link SimNetwork.disconnect}. */
  connect(a: string, b: string): void {
    checkPair(a, b)
    this.#cuts.get(a)?.delete(b)
    this.#cuts.get(b)?.delete(a)
  }

  /**
   * Cuts the link between `a` and `b` (both ways) until {@link SimNetwork.connect}; requests in flight
   * between them fail with PEER_UNREACHABLE. The cut is network state: it outlives either port, and
   * may be set before the ports exist.
   */
  disconnect(a: string, b: string): void {
    checkPair(a, b)
    getOrAdd(this.#cuts, a, () => new Set()).add(b)
    getOrAdd(this.#cuts, b, () => new Set()).add(a)
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      const state = this.#peers.get(from)
      if (state) failExchangesTo(state, to, () => unreachable(to, 'the link was cut'))
    }
  }

  /** Overrides the profile of the link between `a` and `b` (both ways), for messages sent from now on. */
  setLink(a: string, b: string, profile: LinkProfile): void {
    checkPair(a, b)
    checkProfile(profile)
    const frozen = Object.freeze({ ...profile })
    getOrAdd(this.#links, a, () => new Map()).set(b, frozen)
    getOrAdd(this.#links, b, () => new Map()).set(a, frozen)
  }

  /** A snapshot of what the network has carried. */
  stats(): SimNetworkStats {
    return { ...this.#stats, rejected: Object.fromEntries(this.#rejected) }
  }

  /** Open ports `self` is connected to, in creation order. */
  #neighbours(self: PeerState): PeerState[] {
    if (self.closed) return []
    return [...this.#peers.values()].filter((p) => p !== self && !this.#isCut(self.id, p.id))
  }

  #isCut(a: string, b: string): boolean {
    return this.#cuts.get(a)?.has(b) ?? false
  }

  #connected(a: PeerState, b: PeerState): boolean {
    return !a.closed && !b.closed && a !== b && !this.#isCut(a.id, b.id)
  }

  #publish(self: PeerState, topic: string, data: Uint8Array): void {
    if (data.length > DEFAULT_MAX_MESSAGE_BYTES) {
      throw meshError(
        'REQUEST_TOO_LARGE',
        `a gossip message of ${data.length} bytes exceeds the cap of ${DEFAULT_MAX_MESSAGE_BYTES}`,
        { details: { topic, bytes: data.length } },
      )
    }
    for (const peer of this.#neighbours(self)) {
      if (!peer.subscriptions.has(topic)) continue
      const message: GossipMessage = { topic, from: self.id, data: copyOf(data) }
      this.#send(self.id, peer.id, () => {
        const handler = peer.subscriptions.get(topic)
        if (handler === undefined || !this.#connected(self, peer)) return false
        void this.#judge(peer, handler, message)
        return true
      })
    }
  }

  /** Runs a subscriber's handler and records a `reject` against the sender. */
  async #judge(peer: PeerState, handler: GossipHandler, message: GossipMessage): Promise<void> {
    let verdict: Verdict
    try {
      verdict = await handler(message)
    } catch (err) {
      this.#logger?.warn(
        { err, peerId: peer.id, topic: message.topic, from: message.from },
        'ignored gossip whose handler threw',
      )
      verdict = 'ignore'
    }
    if (verdict === 'reject') this.#rejected.set(message.from, (this.#rejected.get(message.from) ?? 0) + 1)
  }

  /** One request (or ping) from `self` to `peer`, settled by the reply, a failure, the timeout or the signal. */
  #exchange(
    self: PeerState,
    peer: string,
    protocol: string | typeof PING,
    data: Uint8Array,
    options: RequestOptions,
  ): Promise<Uint8Array> {
    return new Promise<Uint8Array>((resolve, reject) => {
      const { signal } = options
      if (signal?.aborted) {
        reject(signal.reason)
        return
      }
      const server = this.#peers.get(peer)
      if (server === undefined || !this.#connected(self, server)) {
        const why =
          server === undefined
            ? 'no such peer is open'
            : server === self
              ? 'it is this port'
              : 'the link is cut'
        reject(unreachable(peer, why))
        return
      }
      const name = protocol === PING ? 'ping' : protocol
      const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
      const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_MESSAGE_BYTES
      const settle = (fn: () => void) => {
        if (exchange.settled) return
        exchange.settled = true
        timer.cancel()
        signal?.removeEventListener('abort', onAbort)
        self.exchanges.delete(exchange)
        fn()
      }
      const exchange: Exchange = {
        peer,
        settled: false,
        fail: (err) => settle(() => reject(err)),
      }
      const onAbort = () => exchange.fail(signal?.reason)
      const timer = this.#clock.setTimer(timeoutMs, () =>
        exchange.fail(
          meshError('REQUEST_TIMEOUT', `${name} to ${peer} got no answer within ${timeoutMs} ms`, {
            details: { peer, protocol: name, timeoutMs },
          }),
        ),
      )
      signal?.addEventListener('abort', onAbort, { once: true })
      self.exchanges.add(exchange)

      const request = copyOf(data)
      this.#send(self.id, peer, () => {
        if (exchange.settled || !this.#connected(self, server)) return false
        void this.#serve(server, self.id, protocol, request).then((reply) => {
          if (exchange.settled || !this.#connected(self, server)) return
          this.#send(peer, self.id, () => {
            if (exchange.settled) return false
            if ('code' in reply) {
              exchange.fail(meshError(reply.code, reply.message, { details: { peer, protocol: name } }))
            } else if (reply.data.length > maxResponseBytes) {
              exchange.fail(
                meshError(
                  'RESPONSE_TOO_LARGE',
                  `the response of ${peer} to ${name} has ${reply.data.length} bytes, over the cap of ${maxResponseBytes}`,
                  { details: { peer, protocol: name, bytes: reply.data.length, maxResponseBytes } },
                ),
              )
            } else {
              settle(() => resolve(reply.data))
            }
            return true
          })
        })
        return true
      })
    })
  }

  /** What `server` answers to a request that reached it. */
  async #serve(
    server: PeerState,
    from: string,
    protocol: string | typeof PING,
    request: Uint8Array,
  ): Promise<Reply> {
    if (protocol === PING) return { data: new Uint8Array() }
    const entry = server.handlers.get(protocol)
    if (entry === undefined) {
      return { code: 'PROTOCOL_NOT_SUPPORTED', message: `${server.id} does not serve ${protocol}` }
    }
    if (request.length > entry.maxRequestBytes) {
      return {
        code: 'REQUEST_TOO_LARGE',
        message: `a request of ${request.length} bytes exceeds the cap of ${entry.maxRequestBytes} of ${protocol}`,
      }
    }
    try {
      return { data: copyOf(await entry.handler(request, { protocol, from })) }
    } catch (err) {
      this.#logger?.warn({ err, peerId: server.id, protocol, from }, 'answered a request with an error')
      return { code: 'REMOTE_ERROR', message: `${server.id} failed to handle ${protocol}` }
    }
  }

  /**
   * Carries one message from `from` to `to`: draws loss, then delay, and calls `arrive` when it lands.
   * `arrive` says whether the receiver still wanted it. Both draws are made for every message, so a
   * change of one link's loss rate does not shift the random stream of the others.
   */
  #send(from: string, to: string, arrive: () => boolean): void {
    const link = this.#links.get(from)?.get(to) ?? this.#latency(from, to)
    const lossRate = link.lossRate ?? this.#lossRate
    const lost = this.#random.next() < lossRate
    const delay = Math.max(0, Math.round(link.latencyMs + this.#random.next() * link.jitterMs))
    if (lost) {
      this.#stats.dropped++
      return
    }
    const key = JSON.stringify([from, to])
    const now = this.#clock.now()
    const at = Math.max(now + delay, this.#lastArrival.get(key) ?? 0)
    this.#lastArrival.set(key, at)
    this.#clock.setTimer(at - now, () => {
      if (arrive()) this.#stats.delivered++
      else this.#stats.undeliverable++
    })
  }

  #close(self: PeerState): void {
    if (self.closed) return
    self.closed = true
    self.subscriptions.clear()
    self.handlers.clear()
    this.#peers.delete(self.id)
    failExchangesTo(self, undefined, () =>
      meshError('PORT_CLOSED', `the port of ${self.id} closed`, { details: { peerId: self.id } }),
    )
    for (const other of this.#peers.values()) {
      failExchangesTo(other, self.id, () => unreachable(self.id, 'its port closed'))
    }
  }
}

/** Fails the exchanges of `state` with `peer` (every exchange when `peer` is undefined). */
function failExchangesTo(state: PeerState, peer: string | undefined, error: () => unknown): void {
  for (const exchange of [...state.exchanges]) {
    if (peer === undefined || exchange.peer === peer) exchange.fail(error())
  }
}

function unreachable(peer: string, why: string) {
  return meshError('PEER_UNREACHABLE', `cannot reach ${peer}: ${why}`, { details: { peer } })
}

function getOrAdd<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let value = map.get(key)
  if (value === undefined) {
    value = make()
    map.set(key, value)
  }
  return value
}

function checkPair(a: string, b: string): void {
  if (a === '' || b === '' || a === b) {
    throw new InvalidArgumentError(`a link joins two different peers, not "${a}" and "${b}"`)
  }
}

function checkRate(rate: number, name: string): void {
  if (!(rate >= 0 && rate <= 1))
    throw new InvalidArgumentError(`${name} must be between 0 and 1, not ${rate}`)
}

function checkProfile(profile: LinkProfile): void {
  for (const key of ['latencyMs', 'jitterMs'] as const) {
    const v = profile[key]
    if (!(Number.isFinite(v) && v >= 0))
      throw new InvalidArgumentError(`${key} must be a finite ms count ≥ 0, not ${v}`)
  }
  if (profile.lossRate !== undefined) checkRate(profile.lossRate, 'lossRate')
}

function seedOf(seed: number | bigint): bigint {
  if (typeof seed === 'number' && !Number.isSafeInteger(seed)) {
    throw new InvalidArgumentError(`a seed is an integer, not ${seed}`)
  }
  return BigInt.asUintN(64, BigInt(seed))
}

/**
 * xoshiro128** (Blackman and Vigna), seeded from 64 bits by splitmix64: small, fast, and the same
 * stream on every platform.
 */
class Xoshiro128 {
  #a: number
  #b: number
  #c: number
  #d: number

  constructor(seed: bigint) {
    let x = seed
    const splitmix64 = () => {
      x = BigInt.asUintN(64, x + 0x9e3779b97f4a7c15n)
      let z = x
      z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n)
      z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn)
      return z ^ (z >> 31n)
    }
    const lo = splitmix64()
    const hi = splitmix64()
    this.#a = Number(lo & 0xffffffffn)
    this.#b = Number(lo >> 32n)
    this.#c = Number(hi & 0xffffffffn)
    this.#d = Number(hi >> 32n)
    // The all-zero state would only ever give zeros.
    if ((this.#a | this.#b | this.#c | this.#d) === 0) this.#a = 1
  }

  /** The next 32 bits, as an unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.#b, 5), 7), 9) >>> 0
    const t = this.#b << 9
    this.#c ^= this.#a
    this.#d ^= this.#b
    this.#b ^= this.#c
    this.#a ^= this.#d
    this.#c ^= t
    this.#d = rotl(this.#d, 11)
    return result
  }

  /** A number in [0, 1). */
  next(): number {
    return this.nextUint32() / 0x1_0000_0000
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k))
}
