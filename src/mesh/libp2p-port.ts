/**
 * The network port over libp2p: gossip over gossipsub, request/response over one libp2p stream a
 * request.
 *
 * Request/response framing (all lengths are unsigned 32-bit big-endian):
 *
 * ```
 * request:  length(4) ‖ payload                     then the caller half-closes its side
 * response: status(1) ‖ length(4) ‖ payload         status 0 = ok, 1 = error
 * ```
 *
 * An error payload is a UTF-8 code of `meshErrorCodes` (`REQUEST_TOO_LARGE`, `REMOTE_ERROR`). A fixed
 * 4-byte length lets the server refuse an oversized request after 4 bytes, without buffering it.
 * Every inbound stream has a deadline per phase (read, handle, write, drain) and every error is
 * caught: a misbehaving peer costs a stream, never the process.
 */
import { setMaxListeners } from 'node:events'
import type { GossipsubMessage } from '@libp2p/gossipsub'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import type {
  Connection,
  Libp2p,
  PeerId,
  Stream,
  StreamCloseEvent,
  StreamMessageEvent,
} from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Ping } from '@libp2p/ping'
import { InvalidArgumentError } from '../core/errors.js'
import { createLogger, type Logger } from '../core/logger.js'
import type { MeshPubSub } from './create-libp2p.js'
import { type MeshErrorCode, meshError } from './errors.js'
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_REQUEST_TIMEOUT_MS,
  type GossipHandler,
  type HandleOptions,
  type NetworkPort,
  type RequestHandler,
  type RequestOptions,
  type Unsubscribe,
  type Verdict,
} from './network-port.js'
import { fitsLimits, relayPeerOf } from './relay.js'

/** What the port uses of a libp2p node (a {@link MeshLibp2p} has all of it). */
export type Libp2pPortNode = Pick<
  Libp2p,
  | 'peerId'
  | 'dial'
  | 'handle'
  | 'unhandle'
  | 'getPeers'
  | 'getConnections'
  | 'stop'
  | 'peerStore'
  | 'peerRouting'
> & { services: { pubsub: MeshPubSub; ping: Ping } }

/** Options of {@link createLibp2pPort}. */
export interface Libp2pPortOptions {
  /** Largest gossip message handed to a handler; larger ones are rejected (default 1 MiB). */
  maxGossipBytes?: number
  /** Inbound streams: longest wait for the request, for writing the response, and for the caller to finish (default 10 s each). */
  ioTimeoutMs?: number
  /** Longest a request handler may run before the caller gets REMOTE_ERROR (default 60 s). */
  handlerTimeoutMs?: number
  /** Concurrent inbound streams a connection may open per served protocol (default 32). */
  maxInboundStreams?: number
  /** Where failures of handlers and streams are logged (default: silent). */
  logger?: Logger
}

const OK = 0
const ERROR = 1
const LENGTH_BYTES = 4
const RESPONSE_HEAD_BYTES = 1 + LENGTH_BYTES
/** Error payloads are short codes; anything longer is a malformed response. */
const MAX_ERROR_PAYLOAD_BYTES = 256
/** Frames up to this size are copied into one buffer and sent in one piece. */
const COALESCE_MAX_BYTES = 64 * 1024
/**
 * The receive window a stream of a request or response larger than yamux's 256 KiB is opened to at
 * once (up to the protocol's cap; see `widenReceiveWindow`): a 4 MiB segment's piece at K >= 2 and
 * its header fit. The port reads every frame into its own buffer as it comes, up to that cap, so a
 * wider window lets a peer send sooner, not make this node hold more.
 */
const WIDE_WINDOW_BYTES = 2 * 1024 * 1024
/** New circuits one request may wait for before it takes the last one whatever its room. */
const MAX_CIRCUIT_ATTEMPTS = 8
/** Longest a new circuit beside a full one may take to open. */
const NEW_CIRCUIT_TIMEOUT_MS = 10_000
/** Noise and yamux framing and protocol negotiation, counted against a relayed connection's limit. */
const FRAMING_MARGIN_BYTES = 64 * 1024
/** Wait before retrying a ping that found the peer's one ping stream busy. */
const PING_RETRY_MS = 25
/** The error codes a server may send; anything else is reported as REMOTE_ERROR. */
const REMOTE_CODES: ReadonlySet<string> = new Set<MeshErrorCode>([
  'REQUEST_TOO_LARGE',
  'REMOTE_ERROR',
  'PROTOCOL_NOT_SUPPORTED',
])

const VALIDATION: Record<Verdict, TopicValidatorResult> = {
  accept: TopicValidatorResult.Accept,
  ignore: TopicValidatorResult.Ignore,
  reject: TopicValidatorResult.Reject,
}

/**
 * Wraps a started libp2p node (see {@link createMeshLibp2p}) as a {@link NetworkPort}. The port owns
 * the node: `close()` stops it.
 *
 * Gossip verdicts go back to gossipsub (the node must run it with `asyncValidation`): `accept`
 * forwards, `ignore` drops, `reject` drops and lowers the relaying peer's score on scored topics.
 */
export function createLibp2pPort(node: Libp2pPortNode, options: Libp2pPortOptions = {}): NetworkPort {
  return new Libp2pPort(node, options)
}

interface Served {
  handler: RequestHandler
  maxRequestBytes: number
}

class Libp2pPort implements NetworkPort {
  readonly peerId: string
  private readonly node: Libp2pPortNode
  private readonly pubsub: MeshPubSub
  private readonly log: Logger
  private readonly maxGossipBytes: number
  private readonly ioTimeoutMs: number
  private readonly handlerTimeoutMs: number
  private readonly maxInboundStreams: number
  private readonly subscriptions = new Map<string, GossipHandler>()
  private readonly served = new Map<string, Served>()
  /** Bytes held by requests in flight on relayed connections with limits. */
  private readonly reserved = new WeakMap<Connection, number>()
  /** New circuits being dialled beside full ones, by peer. */
  private readonly dialling = new Map<string, Promise<Connection>>()
  /** Peers being looked up in the DHT before a dial (see `locate`). */
  private readonly lookups = new Map<string, Promise<void>>()
  private readonly closeController = new AbortController()
  private closing: Promise<void> | undefined
  private readonly onGossip = (event: CustomEvent<GossipsubMessage>): void => {
    this.deliver(event.detail).catch((err: unknown) => this.log.warn({ err }, 'failed to deliver gossip'))
  }

  constructor(node: Libp2pPortNode, options: Libp2pPortOptions) {
    this.node = node
    this.pubsub = node.services.pubsub
    this.peerId = node.peerId.toString()
    this.log = options.logger ?? createLogger({ level: 'silent' })
    this.maxGossipBytes = options.maxGossipBytes ?? DEFAULT_MAX_MESSAGE_BYTES
    this.ioTimeoutMs = options.ioTimeoutMs ?? 10_000
    this.handlerTimeoutMs = options.handlerTimeoutMs ?? 60_000
    this.maxInboundStreams = options.maxInboundStreams ?? 32
    this.pubsub.addEventListener('gossipsub:message', this.onGossip)
    // Every request and every served stream listens to this signal until it settles (and stops
    // listening then); dozens at once are normal, not the leak Node warns of past 10.
    setMaxListeners(Number.POSITIVE_INFINITY, this.closeController.signal)
  }

  private get closed(): boolean {
    return this.closeController.signal.aborted
  }

  private assertOpen(): void {
    if (this.closed) throw meshError('PORT_CLOSED', 'The network port is closed')
  }

  // Gossip

  async publish(topic: string, data: Uint8Array): Promise<void> {
    this.assertOpen()
    if (data.byteLength > this.maxGossipBytes) {
      // The simulated network's code too: every subscriber would reject it anyway.
      throw meshError(
        'REQUEST_TOO_LARGE',
        `A gossip message of ${data.byteLength} bytes exceeds ${this.maxGossipBytes}`,
        {
          details: { topic, bytes: data.byteLength, max: this.maxGossipBytes },
        },
      )
    }
    try {
      await this.pubsub.publish(topic, data)
    } catch (err) {
      this.assertOpen()
      throw err
    }
  }

  subscribe(topic: string, handler: GossipHandler): Unsubscribe {
    this.assertOpen()
    if (this.subscriptions.has(topic)) {
      throw new InvalidArgumentError(`${this.peerId} already subscribes to ${topic}`, { details: { topic } })
    }
    this.subscriptions.set(topic, handler)
    this.pubsub.subscribe(topic)
    return () => {
      if (this.subscriptions.get(topic) !== handler) return
      this.subscriptions.delete(topic)
      if (!this.closed) this.pubsub.unsubscribe(topic)
    }
  }

  /** Runs the topic's handler on one message and reports its verdict to gossipsub. */
  private async deliver({ msgId, propagationSource, msg }: GossipsubMessage): Promise<void> {
    const handler = this.subscriptions.get(msg.topic)
    let verdict: Verdict = 'ignore'
    if (handler === undefined) {
      verdict = 'ignore'
    } else if (msg.type !== 'signed' || msg.data.byteLength > this.maxGossipBytes) {
      verdict = 'reject'
    } else {
      try {
        // Gossipsub hands over a Buffer: give handlers a plain Uint8Array view of it.
        const data = new Uint8Array(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength)
        const v = await handler({ topic: msg.topic, from: msg.from.toString(), data })
        verdict = v in VALIDATION ? v : 'ignore'
      } catch (err) {
        this.log.warn({ err, topic: msg.topic }, 'ignore gossip whose handler threw')
      }
    }
    if (this.closed) return
    this.pubsub.reportMessageValidationResult(msgId, propagationSource.toString(), VALIDATION[verdict])
  }

  /**
   * Subscribers of `topic` this node has an open gossipsub stream to: gossipsub learns of a
   * subscription over the peer's stream to us, but sends over ours to the peer, and drops what it
   * cannot send. Only peers in this list receive a message published now.
   */
  topicPeers(topic: string): string[] {
    if (this.closed) return []
    return this.pubsub
      .getSubscribers(topic)
      .map((p) => p.toString())
      .filter((id) => this.pubsub.streamsOutbound.has(id))
  }

  peers(): string[] {
    if (this.closed) return []
    return this.node.getPeers().map((p) => p.toString())
  }

  // Request/response: the serving side

  handle(protocol: string, handler: RequestHandler, options: HandleOptions = {}): void {
    this.assertOpen()
    if (this.served.has(protocol)) {
      throw new InvalidArgumentError(`${this.peerId} already handles ${protocol}`, { details: { protocol } })
    }
    this.served.set(protocol, {
      handler,
      maxRequestBytes: options.maxRequestBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    })
    // libp2p registers the handler synchronously; the promise only updates the peer store.
    this.node
      .handle(
        protocol,
        (stream, connection) => {
          this.serve(protocol, stream, connection).catch((err: unknown) => {
            this.log.warn({ err, protocol }, 'failed to serve a request')
            stream.abort(toError(err))
          })
        },
        // Relayed connections carry limits (src/mesh/relay.ts, sized for these protocols): every
        // request/response protocol is served on them, so a node behind NAT is reachable.
        { force: true, maxInboundStreams: this.maxInboundStreams, runOnLimitedConnection: true },
      )
      .catch((err: unknown) => this.log.warn({ err, protocol }, 'failed to register a protocol handler'))
  }

  unhandle(protocol: string): void {
    if (!this.served.delete(protocol) || this.closed) return
    this.node
      .unhandle(protocol)
      .catch((err: unknown) => this.log.warn({ err, protocol }, 'failed to unregister a protocol'))
  }

  /** One inbound request: read the frame, run the handler, write the response frame. */
  private async serve(protocol: string, stream: Stream, connection: Connection): Promise<void> {
    const entry = this.served.get(protocol)
    if (entry === undefined || this.closed) {
      stream.abort(meshError('PROTOCOL_NOT_SUPPORTED', `Not serving ${protocol}`))
      return
    }
    const from = connection.remotePeer.toString()
    const relay = connection.direct ? undefined : relayPeerOf(connection.remoteAddr.toString())
    const deadline = new StreamDeadline(stream)
    const reader = new FrameReader(stream, LENGTH_BYTES + entry.maxRequestBytes)
    widenReceiveWindow(stream, Math.min(LENGTH_BYTES + entry.maxRequestBytes, WIDE_WINDOW_BYTES))
    try {
      deadline.arm(this.ioTimeoutMs)
      const length = readUint32(await reader.read(LENGTH_BYTES), 0)
      if (length > entry.maxRequestBytes) {
        reader.discard()
        this.log.debug({ protocol, from, length, max: entry.maxRequestBytes }, 'refuse an oversized request')
        await writeFrame(stream, errorFrame('REQUEST_TOO_LARGE'))
        deadline.arm(this.ioTimeoutMs) // for the caller to stop sending and close
        return
      }
      const request = await reader.read(length)
      reader.discard()

      deadline.arm(this.handlerTimeoutMs + this.ioTimeoutMs)
      let frame: Uint8Array[]
      try {
        const response = await withTimeout(
          Promise.resolve().then(() =>
            entry.handler(request, relay === undefined ? { protocol, from } : { protocol, from, relay }),
          ),
          this.handlerTimeoutMs,
          // Stop waiting (the handler itself cannot be cancelled) when the caller or the port goes.
          [deadline.closed, this.closeController.signal],
        )
        if (!(response instanceof Uint8Array))
          throw new TypeError('A request handler must resolve with a Uint8Array')
        frame = [responseHead(OK, response.byteLength), response]
      } catch (err) {
        if (deadline.closed.aborted || this.closed) {
          this.log.debug({ protocol, from }, 'drop a request whose caller or port went away')
          return
        }
        this.log.warn({ err, protocol, from }, 'answer REMOTE_ERROR for a failed request handler')
        frame = errorFrame('REMOTE_ERROR')
      }

      deadline.arm(this.ioTimeoutMs)
      await writeFrame(stream, frame)
      deadline.arm(this.ioTimeoutMs) // for the caller to close its side
    } catch (err) {
      this.log.debug({ err, protocol, from }, 'drop an inbound request stream')
      stream.abort(toError(err))
    } finally {
      reader.discard()
    }
  }

  // Request/response: the calling side

  async request(
    peer: string,
    protocol: string,
    data: Uint8Array,
    options: RequestOptions = {},
  ): Promise<Uint8Array> {
    this.assertOpen()
    const peerId = this.parsePeer(peer)
    const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_MESSAGE_BYTES
    const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    const call = new CallSignal(timeoutMs, [this.closeController.signal, options.signal])
    const { signal } = call
    const context = { peer, protocol }

    let stream: Stream
    // What this request may move over the connection, held against a relayed connection's limits.
    const budget =
      LENGTH_BYTES + data.byteLength + RESPONSE_HEAD_BYTES + maxResponseBytes + FRAMING_MARGIN_BYTES
    let release = (): void => {}
    try {
      const chosen = await this.connectionFor(peerId, budget, timeoutMs, signal)
      const connection = chosen.connection
      release = chosen.release
      stream = await connection.newStream(protocol, { signal, runOnLimitedConnection: true })
      const relay = connection.direct ? undefined : relayPeerOf(connection.remoteAddr.toString())
      if (relay !== undefined) options.onRelay?.(relay)
    } catch (err) {
      release()
      call.dispose()
      throw this.failure(err, { ...context, peerId, call, user: options.signal, opened: false })
    }

    const reader = new FrameReader(stream, RESPONSE_HEAD_BYTES + maxResponseBytes)
    widenReceiveWindow(stream, Math.min(RESPONSE_HEAD_BYTES + maxResponseBytes, WIDE_WINDOW_BYTES))
    const writing = writeFrame(stream, [uint32(data.byteLength), data], signal)
    writing.catch((err: unknown) => this.log.debug({ err, ...context }, 'stop writing a request'))
    try {
      const head = await reader.read(RESPONSE_HEAD_BYTES, signal)
      const status = head[0]
      const length = readUint32(head, 1)
      if (status === OK) {
        if (length > maxResponseBytes) {
          throw meshError('RESPONSE_TOO_LARGE', `Response of ${length} bytes exceeds ${maxResponseBytes}`, {
            details: { ...context, length, max: maxResponseBytes },
          })
        }
        const response = await reader.read(length, signal)
        await writing.catch(() => undefined)
        return response
      }
      if (status !== ERROR || length > MAX_ERROR_PAYLOAD_BYTES) {
        throw meshError('REMOTE_ERROR', 'Malformed response', { details: { ...context, status, length } })
      }
      const code = new TextDecoder().decode(await reader.read(length, signal))
      throw meshError(
        REMOTE_CODES.has(code) ? (code as MeshErrorCode) : 'REMOTE_ERROR',
        `${peer} answered ${protocol} with ${code}`,
        { details: { ...context, remoteCode: code } },
      )
    } catch (err) {
      stream.abort(toError(err))
      throw this.failure(err, { ...context, peerId, call, user: options.signal, opened: true })
    } finally {
      release()
      call.dispose()
      reader.discard()
    }
  }

  async rtt(peer: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<number> {
    this.assertOpen()
    const peerId = this.parsePeer(peer)
    const call = new CallSignal(options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, [
      this.closeController.signal,
      options.signal,
    ])
    const { signal } = call
    try {
      if (this.node.getConnections(peerId).length === 0) await this.locate(peerId, signal)
      for (;;) {
        try {
          return await this.node.services.ping.ping(peerId, { signal })
        } catch (err) {
          // The ping spec allows one outbound ping stream a peer, and kad-dht pings contacts too:
          // wait for its ping to finish.
          if (toError(err).name !== 'TooManyOutboundProtocolStreamsError') throw err
          await abortableDelay(PING_RETRY_MS, signal)
        }
      }
    } catch (err) {
      const opened = this.node.getConnections(peerId).length > 0
      throw this.failure(err, { peer, protocol: 'ping', peerId, call, user: options.signal, opened })
    } finally {
      call.dispose()
    }
  }

  /**
   * A connection to `peer` for a request that may move `bytes` within `ms`: an open one it fits in
   * (direct first, then unlimited, then a relayed one with room left), else a new one. libp2p's own
   * dial is not used while a connection is open: it passes over a relayed connection with limits to
   * try for an unlimited one, and concurrent requests then abort each other's duplicate circuits.
   * A relayed connection is reset by its relay once its data or time runs out (src/mesh/relay.ts),
   * so a request that would not fit in what is left goes on a new circuit (one dial a peer at a time,
   * shared by the requests waiting for it), and a transfer larger than one connection's limit is
   * spread over several instead of being cut off.
   */
  private async connectionFor(
    peer: PeerId,
    bytes: number,
    ms: number,
    signal: AbortSignal,
  ): Promise<{ connection: Connection; release: () => void }> {
    // Chosen and reserved in one step (no await between), so concurrent requests do not all take
    // the same room.
    const take = (c: Connection) => ({ connection: c, release: this.reserve(c, bytes) })
    for (let attempt = 0; ; attempt++) {
      const open = this.node.getConnections(peer).filter((c) => c.status === 'open')
      const fitting = open.filter((c) => fitsLimits(c.limits, this.reserved.get(c) ?? 0, bytes, ms))
      const best = fitting.find((c) => c.direct) ?? fitting.find((c) => c.limits === undefined) ?? fitting[0]
      if (best !== undefined) return take(best)
      if (open.length === 0) {
        await this.locate(peer, signal)
        return take(await this.node.dial(peer, { signal }))
      }
      const key = peer.toString()
      let fresh = this.dialling.get(key)
      if (fresh === undefined) {
        // A new circuit beside the full one (libp2p would otherwise hand back the one it has), on
        // a deadline of its own: the requests waiting for it each keep theirs.
        const dial = new CallSignal(NEW_CIRCUIT_TIMEOUT_MS, [this.closeController.signal])
        fresh = this.node.dial(peer, { signal: dial.signal, force: true }).finally(() => {
          dial.dispose()
          this.dialling.delete(key)
        })
        fresh.catch(() => undefined)
        this.dialling.set(key, fresh)
      }
      const connection = await withTimeout(fresh, ms, [signal])
      const held = this.reserved.get(connection) ?? 0
      // Others waiting on the same dial may have taken its room: then look again. A request too
      // large for even an empty circuit goes on one anyway (the relay will cut it).
      if (fitsLimits(connection.limits, held, bytes, ms) || held === 0 || attempt >= MAX_CIRCUIT_ATTEMPTS)
        return take(connection)
    }
  }

  /**
   * Makes sure the peer store has an address of `peer` before it is dialled by its id. libp2p's dial
   * of a peer id it has no address for looks the peer up in the DHT from inside its dial queue, and
   * a node's DHT queries wait for its first self-query (which starts a second after start). That
   * self-query dials the peers it is told of, and a dial of a peer with a dial already queued joins
   * it: when it meets the peer being looked up, each waits for the other until the self-query's own
   * deadline (5 s). So a node that had just started could not reach a peer it was not connected to
   * for about 6 s (a verifier's first challenges of such nodes all missed). Looked up here, outside
   * the dial queue, the self-query dials that peer on its own and both finish in milliseconds.
   */
  private async locate(peer: PeerId, signal: AbortSignal): Promise<void> {
    const known = await this.node.peerStore.get(peer, { signal }).then(
      (p) => p.addresses.length > 0,
      () => false,
    )
    if (known) return
    const key = peer.toString()
    let lookup = this.lookups.get(key)
    if (lookup === undefined) {
      // Shared by the requests waiting for it, on a deadline of its own (as a new circuit's dial).
      const call = new CallSignal(NEW_CIRCUIT_TIMEOUT_MS, [this.closeController.signal])
      lookup = this.node.peerRouting
        .findPeer(peer, { signal: call.signal })
        .then(() => undefined)
        .finally(() => {
          call.dispose()
          this.lookups.delete(key)
        })
      lookup.catch(() => undefined)
      this.lookups.set(key, lookup)
    }
    // Found or not: the dial then reports what it finds (libp2p keeps the addresses found).
    await withTimeout(lookup, NEW_CIRCUIT_TIMEOUT_MS, [signal]).catch(() => signal.throwIfAborted())
  }

  /** Holds `bytes` of `connection`'s remaining limit for a request in flight; returns the release. */
  private reserve(connection: Connection, bytes: number): () => void {
    if (connection.limits === undefined) return () => {}
    this.reserved.set(connection, (this.reserved.get(connection) ?? 0) + bytes)
    let released = false
    return () => {
      if (released) return
      released = true
      this.reserved.set(connection, Math.max(0, (this.reserved.get(connection) ?? 0) - bytes))
    }
  }

  private parsePeer(peer: string): PeerId {
    try {
      return peerIdFromString(peer)
    } catch (err) {
      throw meshError('PEER_UNREACHABLE', `Not a peer id: ${peer}`, { details: { peer }, cause: err })
    }
  }

  /**
   * Maps a failed call to a MeshError. A timeout before any connection to the peer existed is
   * PEER_UNREACHABLE (it could not be dialled in time); after, REQUEST_TIMEOUT. A caller's abort
   * that is not a timeout is rethrown as its reason.
   */
  private failure(
    err: unknown,
    c: {
      peer: string
      protocol: string
      peerId: PeerId
      call: CallSignal
      user: AbortSignal | undefined
      opened: boolean
    },
  ): unknown {
    const details = { peer: c.peer, protocol: c.protocol }
    if (this.closed) return meshError('PORT_CLOSED', 'The network port closed', { details, cause: err })
    const connected = c.opened || this.node.getConnections(c.peerId).length > 0
    const timedOut = c.call.timedOut || (c.user?.aborted === true && isTimeout(c.user.reason))
    if (timedOut) {
      return connected
        ? meshError('REQUEST_TIMEOUT', `${c.peer} did not answer ${c.protocol} in time`, {
            details,
            cause: err,
          })
        : meshError('PEER_UNREACHABLE', `Could not reach ${c.peer} in time`, { details, cause: err })
    }
    if (c.user?.aborted === true) return c.user.reason
    if (isCoded(err)) return err
    if (toError(err).name === 'UnsupportedProtocolError') {
      return meshError('PROTOCOL_NOT_SUPPORTED', `${c.peer} does not serve ${c.protocol}`, {
        details,
        cause: err,
      })
    }
    if (!c.opened || this.node.getConnections(c.peerId).length === 0) {
      return meshError('PEER_UNREACHABLE', `Could not reach ${c.peer}`, { details, cause: err })
    }
    return meshError('REMOTE_ERROR', `${c.peer} failed ${c.protocol}: ${toError(err).message}`, {
      details,
      cause: err,
    })
  }

  async close(): Promise<void> {
    if (this.closing === undefined) {
      this.closeController.abort(meshError('PORT_CLOSED', 'The network port closed'))
      this.pubsub.removeEventListener('gossipsub:message', this.onGossip)
      this.subscriptions.clear()
      this.served.clear()
      // Bounded: a connection whose peer vanished mid-close must not hold a command (or a node's
      // shutdown) for ever; the process ending closes what is left.
      let timer: ReturnType<typeof setTimeout> | undefined
      this.closing = Promise.race([
        Promise.resolve(this.node.stop()).catch(() => undefined),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, CLOSE_DEADLINE_MS)
        }),
      ]).finally(() => clearTimeout(timer))
    }
    await this.closing
  }
}

/** The longest `close()` waits for libp2p to stop. */
const CLOSE_DEADLINE_MS = 5_000

/**
 * Collects a stream's incoming bytes for sequential exact reads. Keeps at most `cap` bytes (what
 * lies beyond is dropped: the frame it belongs to is refused anyway), so a peer cannot make it
 * buffer more than one frame. The muxer hands over a list of the buffers a frame arrived in: they
 * are kept as they are and copied once, into the bytes a read returns, and a read waiting for `n`
 * bytes wakes once they are all there, not at every buffer.
 */
class FrameReader {
  private readonly stream: Stream
  private readonly cap: number
  private chunks: Uint8Array[] = []
  private buffered = 0
  private kept = 0
  private ended = false
  private error: Error | undefined
  private wake: (() => void) | undefined
  /** Bytes the pending read waits for. */
  private wanted = 0
  private discarding = false

  private readonly onMessage = (event: StreamMessageEvent): void => {
    if (this.discarding) return
    const data = event.data
    if (data instanceof Uint8Array) this.keep(data)
    else for (const buf of data) this.keep(buf)
    if (this.buffered >= this.wanted) this.wake?.()
  }
  private readonly onEnd = (): void => {
    this.ended = true
    this.wake?.()
  }
  private readonly onClose = (event: StreamCloseEvent): void => {
    this.ended = true
    if (event.error !== undefined) this.error = event.error
    this.wake?.()
  }

  constructor(stream: Stream, cap: number) {
    this.stream = stream
    this.cap = cap
    stream.addEventListener('message', this.onMessage)
    stream.addEventListener('remoteCloseWrite', this.onEnd)
    stream.addEventListener('close', this.onClose)
    // A stream can be gone before anyone listens: `newStream` resolves once the protocol is agreed,
    // and the peer may refuse the stream right after (too many inbound streams of the protocol),
    // its reset landing before this reader exists. Waiting on it would last until the timeout.
    if (stream.status === 'reset' || stream.status === 'aborted' || stream.status === 'closed') {
      this.ended = true
      if (stream.status !== 'closed')
        this.error = new Error(`The stream was ${stream.status} before it was read`)
    }
  }

  private keep(buf: Uint8Array): void {
    const room = this.cap - this.kept
    if (room <= 0 || buf.byteLength === 0) return
    const data = buf.byteLength > room ? buf.subarray(0, room) : buf
    this.chunks.push(data)
    this.buffered += data.byteLength
    this.kept += data.byteLength
  }

  /** Resolves with the next `n` bytes; rejects when the stream ends first or `signal` aborts. */
  async read(n: number, signal?: AbortSignal): Promise<Uint8Array> {
    while (this.buffered < n) {
      if (this.error !== undefined) throw this.error
      if (this.ended) throw new Error(`Stream ended after ${this.buffered} of ${n} bytes`)
      if (this.discarding) throw new Error('Reader is discarding')
      signal?.throwIfAborted()
      this.wanted = n
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          this.wake = undefined
          reject(signal?.reason)
        }
        this.wake = () => {
          this.wake = undefined
          signal?.removeEventListener('abort', onAbort)
          resolve()
        }
        signal?.addEventListener('abort', onAbort, { once: true })
      })
    }
    this.wanted = 0
    return this.take(n)
  }

  private take(n: number): Uint8Array {
    // Not zero-filled first (every byte is written below); a plain Uint8Array over its own memory.
    const out = new Uint8Array(Buffer.allocUnsafeSlow(n).buffer, 0, n)
    let offset = 0
    while (offset < n) {
      const chunk = this.chunks[0] as Uint8Array
      const used = Math.min(chunk.byteLength, n - offset)
      out.set(chunk.subarray(0, used), offset)
      offset += used
      if (used === chunk.byteLength) this.chunks.shift()
      else this.chunks[0] = chunk.subarray(used)
    }
    this.buffered -= n
    return out
  }

  /** Drops everything from now on (still listening, so the stream never buffers unread data). */
  discard(): void {
    if (this.discarding) return
    this.discarding = true
    this.chunks = []
    this.buffered = 0
    this.stream.removeEventListener('remoteCloseWrite', this.onEnd)
    this.stream.removeEventListener('close', this.onClose)
    this.stream.addEventListener('close', () => this.stream.removeEventListener('message', this.onMessage), {
      once: true,
    })
  }
}

/**
 * Lets the peer send up to `bytes` on `stream` before it waits for a window update. Yamux starts
 * every stream at a 256 KiB window each way (a sender may assume no more, and this yamux takes its
 * own configured initial window for the peer's, so that cannot be raised in the config without
 * breaking peers that keep the default), then sends a window update after every data frame: a
 * 1 MiB piece came in four or more frames, each waiting for an update through the receiver's event
 * loop. The receiver raising its window with one update, as the yamux spec allows at any time,
 * lets the piece come in one frame. This reaches into @chainsafe/libp2p-yamux's stream (its receive
 * window and its window update, checked by shape: another muxer's stream is left as it is); a test
 * in test/integration/libp2p-port.test.ts checks it against the yamux in use, with a peer that
 * keeps the default.
 */
export function widenReceiveWindow(stream: Stream, bytes: number): void {
  const yamux = stream as unknown as {
    recvWindow?: unknown
    recvWindowCapacity?: unknown
    sendWindowUpdate?: unknown
  }
  if (
    typeof yamux.recvWindow !== 'number' ||
    typeof yamux.recvWindowCapacity !== 'number' ||
    typeof yamux.sendWindowUpdate !== 'function' ||
    yamux.recvWindow >= bytes
  )
    return
  yamux.recvWindow = bytes
  try {
    ;(yamux.sendWindowUpdate as () => void).call(stream)
  } catch {
    // A stream closing meanwhile: the request or response on it fails on its own.
  }
}

/** Aborts a stream when the current phase's time runs out; ends with the stream. */
class StreamDeadline {
  private readonly stream: Stream
  private timer: ReturnType<typeof setTimeout> | undefined
  private readonly closedController = new AbortController()

  constructor(stream: Stream) {
    this.stream = stream
    if (stream.status !== 'open') this.closedController.abort()
    stream.addEventListener(
      'close',
      () => {
        clearTimeout(this.timer)
        this.closedController.abort()
      },
      { once: true },
    )
  }

  /** Aborts once the stream has closed, for whatever reason. */
  get closed(): AbortSignal {
    return this.closedController.signal
  }

  /** (Re)starts the clock: the stream is aborted in `ms` unless it closes first or is re-armed. */
  arm(ms: number): void {
    clearTimeout(this.timer)
    if (this.stream.status !== 'open') return
    this.timer = setTimeout(
      () => this.stream.abort(meshError('REQUEST_TIMEOUT', 'Stream deadline passed')),
      ms,
    )
    this.timer.unref?.()
  }
}

/**
 * Sends `parts` and half-closes, waiting for the transport to take them. A small frame goes as one
 * piece: one muxer frame and one encrypted packet instead of one per part.
 */
async function writeFrame(stream: Stream, parts: Uint8Array[], signal?: AbortSignal): Promise<void> {
  const total = parts.reduce((n, p) => n + p.byteLength, 0)
  if (total <= COALESCE_MAX_BYTES && parts.length > 1) parts = [Buffer.concat(parts)]
  for (const part of parts) {
    if (part.byteLength > 0 && !stream.send(part))
      await stream.onDrain(signal === undefined ? {} : { signal })
  }
  await stream.close(signal === undefined ? {} : { signal })
}

function errorFrame(code: MeshErrorCode): Uint8Array[] {
  const payload = new TextEncoder().encode(code)
  return [responseHead(ERROR, payload.byteLength), payload]
}

function responseHead(status: number, length: number): Uint8Array {
  const head = new Uint8Array(RESPONSE_HEAD_BYTES)
  head[0] = status
  new DataView(head.buffer).setUint32(1, length)
  return head
}

function uint32(value: number): Uint8Array {
  const bytes = new Uint8Array(LENGTH_BYTES)
  new DataView(bytes.buffer).setUint32(0, value)
  return bytes
}

function readUint32(bytes: Uint8Array, offset: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(offset)
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason)
      return
    }
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal.reason)
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** Settles like `promise`, or rejects after `ms` or when one of `signals` aborts, whichever comes first. */
async function withTimeout<T>(promise: Promise<T>, ms: number, signals: AbortSignal[]): Promise<T> {
  const call = new CallSignal(ms, signals)
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        const fail = (): void => reject(call.signal.reason)
        if (call.signal.aborted) fail()
        else call.signal.addEventListener('abort', fail, { once: true })
      }),
    ])
  } finally {
    call.dispose()
  }
}

/**
 * The signal of one call: aborts `ms` after it was made (with a `TimeoutError`, as
 * `AbortSignal.timeout` does) or as soon as one of `parents` aborts. Unlike `AbortSignal.any` with
 * `AbortSignal.timeout`, it lets go of its timer and of the parents' listeners on `dispose()`, so
 * thousands of calls a second leave nothing behind.
 */
class CallSignal {
  private readonly controller = new AbortController()
  private readonly timer: ReturnType<typeof setTimeout>
  private readonly parents: AbortSignal[]
  private readonly onParentAbort = (event: Event): void => {
    this.controller.abort((event.target as AbortSignal).reason)
    this.dispose()
  }
  /** Whether the call's own time ran out (not a parent's abort). */
  timedOut = false

  constructor(ms: number, parents: (AbortSignal | undefined)[]) {
    this.parents = parents.filter((p): p is AbortSignal => p !== undefined)
    const aborted = this.parents.find((p) => p.aborted)
    if (aborted !== undefined) this.controller.abort(aborted.reason)
    for (const parent of this.parents) parent.addEventListener('abort', this.onParentAbort, { once: true })
    this.timer = setTimeout(() => {
      this.timedOut = true
      this.controller.abort(new DOMException('The operation timed out', 'TimeoutError'))
      this.dispose()
    }, ms)
    if (aborted !== undefined) this.dispose()
  }

  get signal(): AbortSignal {
    return this.controller.signal
  }

  dispose(): void {
    clearTimeout(this.timer)
    for (const parent of this.parents) parent.removeEventListener('abort', this.onParentAbort)
  }
}

function isTimeout(reason: unknown): boolean {
  return reason instanceof Error && reason.name === 'TimeoutError'
}

function isCoded(err: unknown): boolean {
  return err instanceof Error && err.name === 'MeshError'
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}
