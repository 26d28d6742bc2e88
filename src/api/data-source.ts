import type {
  EpochDetailView,
  EpochListView,
  GovernanceView,
  JobView,
  NetworkView,
  NodeDetailView,
  NodeView,
  ProposalView,
  SensorReadingView,
} from './schemas.js'
import type { FeedQuery } from './sensor-feed.js'

/**
 * Where the API's answers come from. The devnet implements it from the chain, its verifiers' ops
 * ports and its demo builder ({@link createNetworkDataSource}); a production explorer implements it
 * from an RPC, public verifiers and its own indexer, and serves the same API. Every method may throw
 * a `MeshworkError` (its code picks the HTTP status: `API_STATUS`).
 *
 * Panels of later issues (storage, sensors, governance) add optional methods here and routes beside
 * the existing ones; `NetworkView.features` tells the dashboard which the source serves.
 */
export interface ApiDataSource {
  network(): Promise<NetworkView>
  nodes(): Promise<NodeView[]>
  /** Undefined for a peer id that is not registered. */
  node(peerId: string): Promise<NodeDetailView | undefined>
  /** The newest `limit` posted epochs, newest first. */
  epochs(limit: number): Promise<EpochListView>
  /** Undefined for an epoch with no posted root. */
  epoch(n: number): Promise<EpochDetailView | undefined>
  /** The newest `limit` jobs, newest first. */
  jobs(limit: number): Promise<JobView[]>
  /** The latest checked sensor readings (a source that serves sensors lists 'sensors' in `features`). */
  sensors?(query: FeedQuery): Promise<SensorReadingView[]>
  /**
   * The parameter set in force with its history, and every proposal (a source that serves
   * governance lists 'governance' in `features`). A source that serves 'storage' adds `storage` to
   * its nodes and node details instead of a method of its own.
   */
  governance?(): Promise<GovernanceView>
  /** One proposal by id; undefined when there is none (with `governance`). */
  proposal?(id: bigint): Promise<ProposalView | undefined>
  /** Live changes, for `GET /api/events`; returns the unsubscribe function. */
  subscribe(listener: (event: ApiEvent) => void): () => void
}

/**
 * A live change, sent as a server-sent event named `type` whose data is `data` as JSON: the network
 * summary changed (`network`), a node went on- or offline or joined (`node`), a root was posted
 * (`epoch`), a job finished (`job`), a sensor reading arrived (`sensor`), a proposal was made, voted on
 * or moved on, or a parameter version was added or came into force (`governance`).
 */
export type ApiEvent =
  | { type: 'network'; data: NetworkView }
  | { type: 'node'; data: NodeView }
  | { type: 'epoch'; data: EpochListView['epochs'][number] }
  | { type: 'job'; data: JobView }
  | { type: 'sensor'; data: SensorReadingView }
  | { type: 'governance'; data: GovernanceView }
