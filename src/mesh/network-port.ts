/**
 * The network port: everything protocol code may do on the mesh. Two implementations pass one shared
 * test suite (test/helpers/network-port-compliance.ts): libp2p (`createLibp2pPort`) and the
 * in-memory simulated network (`SimNetwork`), so the same node, verifier and market code runs on
 * real sockets and in the simulator.
 */

/** A gossip message as a subscriber receives it. */
export interface GossipMessage {
  topic: string
  /** The peer id of the node that published it (as the transport authenticated it). */
  from: string
  data: Uint8Array
}

/**
 * What a subscriber decides about a gossip message: `accept` forwards it, `ignore` drops it quietly,
 * `reject` drops it and penalizes the peer that sent it (gossipsub peer score).
 */
export type Verdict = 'accept' | 'ignore' | 'reject'

/** Handles gossip on one topic; its verdict decides whether the message travels further. */
export type GossipHandler = (message: GossipMessage) => Verdict | Promise<Verdict>

/** Who sent a request. */
export interface RequestContext {
  protocol: string
  /** The requesting peer's id (authenticated by the transport). */
  from: string
  /**
   * The peer id of the circuit relay the request came through, when it came over a relayed
   * connection (the receiver of relayed bytes receipts the relay for them). The simulated network
   * has no relays.
   */
  relay?: string
}

/** Serves one request/response protocol: the returned bytes are the response. Throwing answers with an error. */
export type RequestHandler = (request: Uint8Array, context: RequestContext) => Promise<Uint8Array>

/** Limits of a served protocol. */
export interface HandleOptions {
  /** Largest request accepted, in bytes (default {@link DEFAULT_MAX_MESSAGE_BYTES}). */
  maxRequestBytes?: number
}

/** Options of one request. */
export interface RequestOptions {
  /** Give up after this long (default {@link DEFAULT_REQUEST_TIMEOUT_MS}). */
  timeoutMs?: number
  /** Largest response accepted, in bytes (default {@link DEFAULT_MAX_MESSAGE_BYTES}). */
  maxResponseBytes?: number
  signal?: AbortSignal
  /**
   * Called with the relay's peer id when the request goes over a relayed connection (circuit relay
   * v2), once its stream is open; not called for a direct connection. The downloader uses it to
   * receipt the relay for the bytes it carried. The simulated network has no relays.
   */
  onRelay?: (relay: string) => void
}

/** Default size cap of a request, a response or a gossip message. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
/** Default request timeout. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000

/** Called when a subscription is dropped. */
export type Unsubscribe = () => void

/** The mesh as protocol code sees it. Errors are {@link MeshError}s with the codes in `meshErrorCodes`. */
export interface NetworkPort {
  /** This node's peer id. */
  readonly peerId: string
  /**
   * Publishes `data` on `topic` to every subscriber but this node. With no subscriber it resolves
   * and the message is gone (gossip is fire and forget); a message above the size cap rejects with
   * REQUEST_TOO_LARGE.
   */
  publish(topic: string, data: Uint8Array): Promise<void>
  /** Receives gossip on `topic` until the returned function is called. One handler a topic. */
  subscribe(topic: string, handler: GossipHandler): Unsubscribe
  /** Serves a request/response protocol (one handler a protocol id). */
  handle(protocol: string, handler: RequestHandler, options?: HandleOptions): void
  /** Stops serving a protocol. */
  unhandle(protocol: string): void
  /** Sends one request to `peer` and resolves with its response. */
  request(peer: string, protocol: string, data: Uint8Array, options?: RequestOptions): Promise<Uint8Array>
  /** Measures one round trip to `peer`, in milliseconds. */
  rtt(peer: string, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<number>
  /** Peers this node is connected to now. */
  peers(): string[]
  /** Peers known to subscribe to `topic` (gossip published now reaches them). */
  topicPeers(topic: string): string[]
  /** Stops everything: handlers, subscriptions, connections. Later calls fail with PORT_CLOSED. */
  close(): Promise<void>
}
