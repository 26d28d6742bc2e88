import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { type CircuitRelayService, circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import {
  type GossipSub,
  type GossipSubComponents,
  gossipsub,
  StrictSign,
  type TopicValidatorResult,
} from '@libp2p/gossipsub'
import { createTopicScoreParams, type TopicScoreParams } from '@libp2p/gossipsub/score'
import { type Identify, identify } from '@libp2p/identify'
import type {
  AbortOptions,
  ComponentLogger,
  Connection,
  ConnectionGater,
  Ed25519PrivateKey,
  Libp2p,
  Libp2pEvents,
  Logger,
  PeerId,
  Startable,
  TypedEventTarget,
} from '@libp2p/interface'
import { type KadDHT, kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { mdns } from '@libp2p/mdns'
import { type Ping, ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2pOptions } from 'libp2p'
import { DEFAULT_MAX_MESSAGE_BYTES } from './network-port.js'
import { circuitListenAddress, type RelayLimits, relayServerInit } from './relay.js'
import { RelayKeeper, type RelayKeeperComponents } from './relay-keeper.js'

/**
 * The gossipsub service as the network port uses it. The published `GossipSub` interface leaves out
 * members that the object the factory returns has (declared public in its class):
 * `reportMessageValidationResult`, which `asyncValidation` requires, `getScore`, `getMeshPeers`
 * and `streamsOutbound`. Note that `propagationSource` is the peer id as a string.
 */
export interface MeshPubSub extends GossipSub {
  reportMessageValidationResult(
    msgId: string,
    propagationSource: string,
    acceptance: TopicValidatorResult,
  ): void
  /** The local peer score of `peerId` (negative after rejected messages on a scored topic). */
  getScore(peerId: string): number
  /** The peers (by id string) this node forwards `topic`'s messages to: its mesh on the topic. */
  getMeshPeers(topic: string): string[]
  /** Peers (by id string) this node has an open gossipsub stream to: only those receive what it sends. */
  readonly streamsOutbound: ReadonlyMap<string, unknown>
}

/** The services of a Meshwork libp2p node (a type alias: libp2p's `ServiceMap` needs an index signature). */
export type MeshServices = {
  identify: Identify
  ping: Ping
  pubsub: MeshPubSub
  dht: KadDHT
  dialer: MeshDialer
  /** The circuit relay v2 server, on a node started with `relay.server`. */
  relay?: CircuitRelayService
  /** Keeps the reservations of a node started with `relay.via`. */
  relayKeeper?: RelayKeeper
}

/** A libp2p node built by {@link createMeshLibp2p}. */
export type MeshLibp2p = Libp2p<MeshServices>

/** Options of {@link createMeshLibp2p}. */
export interface MeshLibp2pInit {
  /** The node's identity; pass the same key on every start to keep the peer id. */
  privateKey: Ed25519PrivateKey
  /** Listen addresses (default {@link DEFAULT_LISTEN_ADDRESSES}). */
  listen?: string[]
  /** Addresses announced to peers instead of the listen addresses (e.g. behind port forwarding). */
  announce?: string[]
  /** Multiaddrs dialed at start and redialed with backoff whenever not connected. */
  bootstrap?: string[]
  /** Discover and dial peers on the LAN with mDNS (default false). */
  mdns?: boolean
  /** Most open connections (default 100). */
  maxConnections?: number
  /**
   * Most inbound connections a second from one host before more are refused (libp2p's default, 5).
   * Tests that run dozens of peers on 127.0.0.1 raise it; a node facing the internet keeps it.
   */
  inboundConnectionThreshold?: number
  /** Prefix of the DHT protocol id, `${prefix}/kad/1.0.0` (default `/meshwork`). */
  dhtProtocolPrefix?: string
  /**
   * Gossip topics that gossipsub scores with {@link MESH_TOPIC_SCORE_PARAMS}. Gossipsub only scores
   * configured topics: a `reject` verdict on another topic stops the message but costs its sender
   * nothing.
   */
  scoredTopics?: string[]
  /** Largest gossip message expected, sizes gossipsub's inbound frame limit (default 1 MiB). */
  maxMessageBytes?: number
  /** Refuses dials and connections by peer or address (allow/deny lists; tests build topologies with it). */
  connectionGater?: ConnectionGater
  /** Bootstrap redial backoff, first and longest wait in ms (default 500 and 30,000). */
  redialBackoffMs?: { min: number; max: number }
  /** Circuit relay v2 (every node can dial through relays; see `src/mesh/relay.ts`). */
  relay?: {
    /** Run a relay server with these limits (a node with a public address). */
    server?: RelayLimits
    /**
     * Relays to reserve a slot on (multiaddrs ending in `/p2p/ID`), for a node behind NAT: it keeps
     * connected to each, reserves a slot there (again after the relay restarts) and is dialled at
     * `RELAY/p2p-circuit`.
     */
    via?: string[]
  }
  /** Start the node before returning (default true). */
  start?: boolean
}

/** Default listen addresses: TCP and WebSockets on loopback, ports chosen by the OS. */
export const DEFAULT_LISTEN_ADDRESSES: readonly string[] = ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws']

/**
 * Topic score parameters for low-traffic topics: rejected messages (P4) cost their sender `-10 × n²`,
 * where the count `n` decays by 1% a second (half-life about 70 s), so three quick rejections pass
 * gossipsub's graylist threshold (-80). The mesh delivery rate penalties (P3, P3b), which punish
 * peers on quiet topics for not delivering enough, are off.
 */
export const MESH_TOPIC_SCORE_PARAMS: Partial<TopicScoreParams> = {
  topicWeight: 1,
  timeInMeshWeight: 0.01,
  timeInMeshQuantum: 1_000,
  timeInMeshCap: 100,
  firstMessageDeliveriesWeight: 0.5,
  firstMessageDeliveriesDecay: 0.9,
  firstMessageDeliveriesCap: 20,
  meshMessageDeliveriesWeight: 0,
  meshFailurePenaltyWeight: 0,
  invalidMessageDeliveriesWeight: -10,
  invalidMessageDeliveriesDecay: 0.99,
}

/**
 * Builds (and by default starts) a libp2p 3 node for Meshwork: TCP, WebSockets and circuit relay v2
 * (dialing; listening through `relay.via`; a relay server with `relay.server`), Noise, Yamux,
 * identify, ping, gossipsub (signed messages, verdicts reported by the application), a server-mode
 * kad-dht, bootstrap dialing with backoff and optional mDNS.
 *
 * Node 20 needs the `Promise.withResolvers` polyfill (`src/core/polyfill.ts`) loaded first.
 *
 * @example
 * ```ts
 * const node = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), bootstrap: [addr] })
 * const port = createLibp2pPort(node)
 * ```
 */
export async function createMeshLibp2p(init: MeshLibp2pInit): Promise<MeshLibp2p> {
  const maxMessageBytes = init.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES
  const peerDiscovery: NonNullable<Libp2pOptions['peerDiscovery']> = init.mdns === true ? [mdns()] : []
  const topics: Record<string, TopicScoreParams> = {}
  for (const topic of init.scoredTopics ?? []) topics[topic] = createTopicScoreParams(MESH_TOPIC_SCORE_PARAMS)

  const via = init.relay?.via ?? []
  const circuits = via.map((relay) => multiaddr(circuitListenAddress(relay)))
  const relayServer = init.relay?.server

  return createLibp2p<MeshServices>({
    privateKey: init.privateKey,
    start: init.start ?? true,
    addresses: {
      listen: [...(init.listen ?? DEFAULT_LISTEN_ADDRESSES)],
      ...(init.announce === undefined ? {} : { announce: init.announce }),
    },
    // Every node dials through relays; one behind NAT also listens on its relays' circuits (the
    // relay keeper below, not listen addresses: a relay that is down must not fail the start).
    transports: [tcp(), webSockets(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: {
      maxConnections: init.maxConnections ?? 100,
      ...(init.inboundConnectionThreshold === undefined
        ? {}
        : { inboundConnectionThreshold: init.inboundConnectionThreshold }),
    },
    ...(init.connectionGater === undefined ? {} : { connectionGater: init.connectionGater }),
    peerDiscovery,
    services: {
      identify: identify(),
      // Builders measure the round trip to several nodes for every job they place, many at once.
      ping: ping({ maxInboundStreams: 32, maxOutboundStreams: 4 }),
      pubsub: gossipsub({
        globalSignaturePolicy: StrictSign,
        emitSelf: false,
        asyncValidation: true,
        allowPublishToZeroTopicPeers: true,
        ignoreDuplicatePublishError: true,
        // Own messages go straight to every subscribed peer: lowest latency in a small mesh, and
        // publishing works before the mesh has been grafted.
        floodPublish: true,
        fallbackToFloodsub: false,
        // Mesh degree 6, kept between 4 and 8 (the spec allows up to 12): every node forwards each
        // message to at most 8 peers. Meshwork's gossip is control traffic (ads, observations) that
        // every node on a modest rig handles; with 12, a 20-node mesh spent half again the CPU per
        // message on duplicates and its slowest receiver waited twice as long (bench/mesh.ts).
        D: 6,
        Dlo: 4,
        Dhi: 8,
        heartbeatInterval: 1_000,
        // A duplicate (the same author and sequence number, which the signature covers) is
        // recognised before its signature is checked again: most copies a node receives are duplicates.
        fastMsgIdFn: fastMessageId,
        // IDONTWANT pays for itself on large messages only; for ads and observations (a few KiB) it
        // would double the control traffic and arrive after the duplicates anyway.
        idontwantMinDataSize: IDONTWANT_MIN_BYTES,
        maxInboundDataLength: Math.max(4 * 1024 * 1024, 2 * maxMessageBytes + 64 * 1024),
        scoreParams: {
          topics,
          // Loopback is where tests and simulations run many nodes: no colocation penalty there.
          IPColocationFactorWhitelist: new Set(['127.0.0.1', '::1']),
        },
      }) as (components: GossipSubComponents) => MeshPubSub,
      dht: kadDHT({
        protocol: `${init.dhtProtocolPrefix ?? '/meshwork'}/kad/1.0.0`,
        clientMode: false,
        peerInfoMapper: passthroughMapper,
      }),
      dialer: (components: MeshDialerComponents) =>
        new MeshDialer(components, {
          // Relays to be reached through are kept connected like bootstrap peers.
          bootstrap: [...new Set([...(init.bootstrap ?? []), ...via])].map((a) => multiaddr(a)),
          dialDiscovered: init.mdns === true,
          maxConnections: init.maxConnections ?? 100,
          backoffMs: init.redialBackoffMs ?? { min: 500, max: 30_000 },
        }),
      ...(relayServer === undefined ? {} : { relay: circuitRelayServer(relayServerInit(relayServer)) }),
      ...(circuits.length === 0
        ? {}
        : {
            relayKeeper: (components: RelayKeeperComponents) =>
              new RelayKeeper(components, {
                circuits,
                backoffMs: init.redialBackoffMs ?? { min: 500, max: 30_000 },
              }),
          }),
    },
  })
}

/** Smallest gossip message that gossipsub announces with IDONTWANT to its mesh peers. */
const IDONTWANT_MIN_BYTES = 16 * 1024

/**
 * Gossipsub's fast message id: author and sequence number, as the StrictSign message id is. Computed on
 * the raw message before its signature is checked; gossipsub caches it only for messages whose
 * signature held, so a forged copy cannot shadow the real one.
 */
function fastMessageId(msg: { from?: Uint8Array; seqno?: Uint8Array }): string {
  const from = msg.from ?? EMPTY
  const seqno = msg.seqno ?? EMPTY
  return `${Buffer.from(from).toString('base64')}.${Buffer.from(seqno).toString('base64')}`
}
const EMPTY = new Uint8Array(0)

/** What {@link MeshDialer} uses of the libp2p components. */
export interface MeshDialerComponents {
  connectionManager: {
    openConnection(peer: Multiaddr | PeerId, options?: AbortOptions): Promise<Connection>
    getConnections(peerId?: PeerId): Connection[]
  }
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
}

/** Options of {@link MeshDialer}. */
export interface MeshDialerInit {
  /** Peers to stay connected to. */
  bootstrap: Multiaddr[]
  /** Dial peers that discovery (mDNS) reports, while below `maxConnections`. */
  dialDiscovered: boolean
  /** No discovery dials at or above this many connections. */
  maxConnections: number
  /** Redial backoff: first and longest wait, in ms. */
  backoffMs: { min: number; max: number }
}

/** How long one bootstrap dial may take. */
const DIAL_TIMEOUT_MS = 10_000
/** While connected, how often a bootstrap loop checks the connection (a disconnect wakes it early). */
const CONNECTED_CHECK_MS = 5_000

/**
 * Keeps the node connected to its bootstrap peers (libp2p 3 has no auto-dialer and
 * `@libp2p/bootstrap` is not a dependency): dials each at start, and redials with exponential
 * backoff whenever it is not connected. Also dials peers found by discovery when asked to.
 */
export class MeshDialer implements Startable {
  private readonly components: MeshDialerComponents
  private readonly init: MeshDialerInit
  private readonly log: Logger
  private stopController = new AbortController()
  private readonly wakers = new Set<() => void>()
  private readonly onDisconnect = (): void => {
    for (const wake of this.wakers) wake()
  }
  private readonly onDiscovery = (event: CustomEvent<{ id: PeerId; multiaddrs: Multiaddr[] }>): void => {
    const { id } = event.detail
    const cm = this.components.connectionManager
    if (cm.getConnections(id).length > 0 || cm.getConnections().length >= this.init.maxConnections) return
    cm.openConnection(id, {
      signal: AbortSignal.any([this.stopController.signal, AbortSignal.timeout(DIAL_TIMEOUT_MS)]),
    }).catch((err: unknown) => this.log('could not dial discovered peer %p - %e', id, err))
  }

  constructor(components: MeshDialerComponents, init: MeshDialerInit) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('meshwork:dialer')
  }

  readonly [Symbol.toStringTag] = 'meshwork:dialer'

  start(): void {
    this.stopController = new AbortController()
  }

  afterStart(): void {
    this.components.events.addEventListener('peer:disconnect', this.onDisconnect)
    if (this.init.dialDiscovered) this.components.events.addEventListener('peer:discovery', this.onDiscovery)
    for (const addr of this.init.bootstrap) {
      this.keepConnected(addr, this.stopController.signal).catch((err: unknown) =>
        this.log.error('bootstrap loop for %a ended - %e', addr, err),
      )
    }
  }

  beforeStop(): void {
    this.stopController.abort()
    this.components.events.removeEventListener('peer:disconnect', this.onDisconnect)
    this.components.events.removeEventListener('peer:discovery', this.onDiscovery)
  }

  stop(): void {}

  /**
   * Dials `addr` until stopped. Dials are at least `backoff` apart, and `backoff` doubles with every
   * failed dial or connection lost within {@link CONNECTED_CHECK_MS} of its dial; it falls back to
   * the minimum once a connection has lasted that long.
   */
  private async keepConnected(addr: Multiaddr, signal: AbortSignal): Promise<void> {
    const cm = this.components.connectionManager
    let peer = peerIdStringOf(addr)
    const isConnected = (): boolean =>
      peer !== undefined && cm.getConnections().some((c) => c.remotePeer.toString() === peer)
    const { min, max } = this.init.backoffMs
    let backoff = min
    let lastDial = Number.NEGATIVE_INFINITY
    while (!signal.aborted) {
      if (isConnected()) {
        if (Date.now() - lastDial >= CONNECTED_CHECK_MS) backoff = min
        // Sleep until a disconnect, or the next periodic check.
        await this.wait(CONNECTED_CHECK_MS, signal, true)
        const lostSoon = !isConnected() && Date.now() - lastDial < CONNECTED_CHECK_MS
        if (lostSoon) backoff = Math.min(backoff * 2, max)
        continue
      }
      const since = Date.now() - lastDial
      if (since < backoff) {
        await this.wait(backoff - since, signal, false)
        continue
      }
      lastDial = Date.now()
      try {
        const connection = await cm.openConnection(addr, {
          signal: AbortSignal.any([signal, AbortSignal.timeout(DIAL_TIMEOUT_MS)]),
        })
        peer = connection.remotePeer.toString()
        this.log('connected to bootstrap peer %a', addr)
      } catch (err) {
        if (signal.aborted) return
        backoff = Math.min(backoff * 2, max)
        this.log('could not dial bootstrap peer %a, retry in %d ms - %e', addr, backoff, err)
      }
    }
  }

  /** Waits `ms`, or less when the dialer stops or (if `wakeOnDisconnect`) a peer disconnects. */
  private wait(ms: number, signal: AbortSignal, wakeOnDisconnect: boolean): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.wakers.delete(done)
        signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      if (wakeOnDisconnect) this.wakers.add(done)
      signal.addEventListener('abort', done, { once: true })
    })
  }
}

/** The peer id in a multiaddr's `/p2p/` component, if any. */
function peerIdStringOf(addr: Multiaddr): string | undefined {
  return addr.getComponents().find((c) => c.name === 'p2p')?.value
}
