import { type Static, Type } from 'typebox'

/**
 * The API's request and response schemas (TypeBox: one definition gives the JSON Schema fastify
 * validates and serializes with, the TypeScript type, and the OpenAPI document). Amounts are base
 * units of MESH as decimal strings (JSON has no bigint); times are unix seconds of chain time unless
 * a field says milliseconds.
 */

/** An amount of MESH in base units (18 decimals), as a decimal string. */
export const Amount = Type.String({ pattern: '^[0-9]{1,78}$', description: 'base units, decimal string' })
/** A 20-byte EVM address, 0x and 40 hex digits. */
export const Address = Type.String({ pattern: '^0x[0-9a-fA-F]{40}$' })
/** A 32-byte hash, 0x and 64 hex digits. */
export const Bytes32 = Type.String({ pattern: '^0x[0-9a-fA-F]{64}$' })
/** A libp2p peer id as text (base58btc or CIDv1): letters and digits only. */
export const PeerIdParam = Type.String({ pattern: '^[1-9A-Za-z]{32,128}$', minLength: 32, maxLength: 128 })
/** An epoch number in a path. */
export const EpochParam = Type.String({ pattern: '^[0-9]{1,9}$', maxLength: 9 })

/** The error body of every 4xx and 5xx answer. */
export const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String({ pattern: '^[A-Z][A-Z0-9_]*$' }),
    message: Type.String(),
    hint: Type.Optional(Type.String()),
  }),
})
export type ErrorBody = Static<typeof ErrorBody>

/** A verifier as the registry and its health check see it. */
export const VerifierView = Type.Object({
  peerId: Type.String(),
  address: Address,
  stake: Amount,
  online: Type.Boolean(),
  label: Type.Optional(Type.String()),
})
export type VerifierView = Static<typeof VerifierView>

/** `GET /api/network`. */
export const NetworkView = Type.Object({
  chainId: Type.Integer(),
  /** The network id the mesh's messages are bound to. */
  network: Type.String(),
  contracts: Type.Record(Type.String(), Address),
  genesisTime: Type.Integer(),
  epochDuration: Type.Integer(),
  /** The epoch the chain's clock is in, and when (chain time) it ends. */
  epoch: Type.Integer(),
  epochEndsAt: Type.Integer(),
  head: Type.Object({ block: Type.Integer(), timestamp: Type.Integer() }),
  lastPostedEpoch: Type.Union([Type.Integer(), Type.Null()]),
  nodes: Type.Integer({ description: 'registered nodes with at least the minimum stake' }),
  nodesOnline: Type.Integer(),
  verifiers: Type.Array(VerifierView),
  /** Newest posted root's cumulative total (what has been earned), and what has been claimed. */
  totalEarned: Amount,
  totalClaimed: Amount,
  /** Which panels this API serves data for ('nodes', 'epochs', 'jobs'; later 'storage', 'sensors', 'governance'). */
  features: Type.Array(Type.String()),
})
export type NetworkView = Static<typeof NetworkView>

/**
 * A node's storage at a glance (in `GET /api/nodes`, from a source that serves 'storage'): what
 * its signed receipts say it holds now, and the verifiers' counts in the newest posted epoch.
 */
export const NodeStorageSummary = Type.Object({
  /** Unexpired shards its storage receipts commit to, and their bytes. */
  shards: Type.Integer(),
  bytes: Type.Integer(),
  /** Newest posted epoch: chunk challenges sent to its shards (every verifier) and how many passed. */
  challenges: Type.Integer(),
  passed: Type.Integer(),
  /** Newest posted epoch: bytes downloaders signed receipts for (the median across verifiers). */
  servedBytes: Type.Integer(),
})
export type NodeStorageSummary = Static<typeof NodeStorageSummary>

/** A node in `GET /api/nodes`. */
export const NodeView = Type.Object({
  peerId: Type.String(),
  operator: Address,
  /** A name for people (the devnet's "node-0 (Berlin)"), when the source knows one. */
  label: Type.Optional(Type.String()),
  services: Type.Array(Type.String()),
  /** The registered H3 cell and its centre. */
  h3Cell: Type.String({ pattern: '^[0-9a-f]{1,16}$' }),
  /** Null when the registered cell is not a valid H3 cell. */
  lat: Type.Union([Type.Number(), Type.Null()]),
  lon: Type.Union([Type.Number(), Type.Null()]),
  stake: Amount,
  registeredAt: Type.Integer(),
  online: Type.Boolean(),
  /** When it last answered a health check (ms since the unix epoch, this server's clock), or null. */
  lastSeen: Type.Union([Type.Integer(), Type.Null()]),
  /** Its uptime score (ppm) and reward in the newest posted epoch, null when it was not in it. */
  uptimePpm: Type.Union([Type.Integer(), Type.Null()]),
  lastReward: Type.Union([Amount, Type.Null()]),
  /** Its operator's cumulative earnings in the newest posted root. */
  earned: Amount,
  /** Present when the source serves 'storage'. */
  storage: Type.Optional(NodeStorageSummary),
})
export type NodeView = Static<typeof NodeView>

/** One verifier's part of a node's uptime score. */
export const VerifierScore = Type.Object({
  verifier: Type.String(),
  challenges: Type.Integer(),
  answered: Type.Integer(),
  fractionPpm: Type.Integer(),
})

/** A node's result in one posted epoch, with why. */
export const NodeEpochView = Type.Object({
  epoch: Type.Integer(),
  scorePpm: Type.Integer(),
  eligible: Type.Boolean(),
  vetting: Type.Boolean(),
  stakeWeight: Amount,
  /** Everything the node earned in the epoch (every pool), and its uptime part. */
  reward: Amount,
  uptimeReward: Amount,
  verifiers: Type.Array(VerifierScore),
  compute: Type.Union([
    Type.Object({ value: Amount, fraud: Type.Boolean(), reward: Amount, jobs: Type.Integer() }),
    Type.Null(),
  ]),
  /** One sentence per fact that made the score ("answered 38 of 40 challenges from verifier X"). */
  explanation: Type.Array(Type.String()),
})
export type NodeEpochView = Static<typeof NodeEpochView>

/** A node's storage and delivery in one posted epoch, as the verifiers counted them. */
export const NodeStorageEpochView = Type.Object({
  epoch: Type.Integer(),
  /** Chunk challenges sent to its shards by every verifier, passed and failed. */
  challenges: Type.Integer(),
  passed: Type.Integer(),
  failed: Type.Integer(),
  /** Proven bytes (the median of the verifiers' counts; a verifier whose challenges did not all pass counts 0). */
  provenBytes: Type.Integer(),
  /** Bytes served to downloaders (the median of the verifiers' counts of signed byte receipts), and from how many. */
  servedBytes: Type.Integer(),
  downloaders: Type.Integer(),
  /** Its parts of the storage and relay (bandwidth) pools. */
  storageReward: Amount,
  bandwidthReward: Amount,
  verifiers: Type.Array(
    Type.Object({
      verifier: Type.String(),
      challenges: Type.Integer(),
      passed: Type.Integer(),
      provenBytes: Type.Integer(),
      servedBytes: Type.Integer(),
      downloaders: Type.Integer(),
    }),
  ),
})
export type NodeStorageEpochView = Static<typeof NodeStorageEpochView>

/** A shard a node holds, as its signed storage receipt commits to it. */
export const HeldShardView = Type.Object({
  cid: Type.String(),
  shard: Type.Integer(),
  bytes: Type.Integer(),
  /** The first and last epoch it is challenged in. */
  fromEpoch: Type.Integer(),
  untilEpoch: Type.Integer(),
})
export type HeldShardView = Static<typeof HeldShardView>

/** A node's storage in `GET /api/nodes/:peerId` (from a source that serves 'storage'). */
export const NodeStorageView = Type.Object({
  /** Unexpired shards its receipts commit to, their bytes, and of how many files. */
  shards: Type.Integer(),
  bytes: Type.Integer(),
  files: Type.Integer(),
  /** Those shards, the ones kept longest first, at most 50. */
  held: Type.Array(HeldShardView),
  /** Posted epochs in which verifiers counted its storage or bandwidth, newest first (at most 10). */
  epochs: Type.Array(NodeStorageEpochView),
})
export type NodeStorageView = Static<typeof NodeStorageView>

/** `GET /api/nodes/:peerId`. */
export const NodeDetailView = Type.Object({
  node: NodeView,
  /** Newest first, at most the last 10 posted epochs. */
  epochs: Type.Array(NodeEpochView),
  claimed: Amount,
  /** What it can expect next epoch if it keeps answering, and what missing challenges would cost. */
  estimate: Type.Object({
    nextEpoch: Amount,
    thresholdPpm: Type.Integer(),
    summary: Type.String(),
  }),
  /** Present when the source serves 'storage'. */
  storage: Type.Optional(NodeStorageView),
})
export type NodeDetailView = Static<typeof NodeDetailView>

/** A posted epoch in `GET /api/epochs`. */
export const EpochView = Type.Object({
  epoch: Type.Integer(),
  root: Bytes32,
  /** The bundle's CID (fetch it from a verifier: `/bundles/CID`). */
  cid: Type.String(),
  block: Type.Integer(),
  /** The block's timestamp: when the root was posted. */
  postedAt: Type.Integer(),
  /** What the emission schedule released for the epoch, what the root added, and the new total. */
  emitted: Amount,
  paid: Amount,
  totalCumulative: Amount,
  /** Claimed while this epoch's root was the newest posted (claims prove against it or the one before). */
  claimed: Amount,
})
export type EpochView = Static<typeof EpochView>

/** `GET /api/epochs`. */
export const EpochListView = Type.Object({
  /** Newest first. */
  epochs: Type.Array(EpochView),
  current: Type.Integer(),
})
export type EpochListView = Static<typeof EpochListView>

/** A node's line in an epoch's breakdown. */
export const EpochNodeView = Type.Object({
  peerId: Type.String(),
  operator: Address,
  scorePpm: Type.Integer(),
  eligible: Type.Boolean(),
  vetting: Type.Boolean(),
  reward: Amount,
})

/** `GET /api/epochs/:n`. */
export const EpochDetailView = Type.Object({
  epoch: EpochView,
  /** Whether the bundle recomputes to the posted root with the chain's parameters. */
  matches: Type.Boolean(),
  paramsVersion: Type.Integer(),
  pools: Type.Record(Type.String(), Amount),
  dust: Amount,
  verifiers: Type.Array(Type.String()),
  nodes: Type.Array(EpochNodeView),
})
export type EpochDetailView = Static<typeof EpochDetailView>

/** A job the network ran, as its builder saw it. */
export const JobView = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  /** When it was submitted (ms since the unix epoch, the builder's clock). */
  at: Type.Integer(),
  ok: Type.Boolean(),
  provider: Type.Union([Type.String(), Type.Null()]),
  tier: Type.Union([Type.Literal('edge'), Type.Literal('cloud'), Type.Null()]),
  latencyMs: Type.Union([Type.Number(), Type.Null()]),
  verification: Type.Union([
    Type.Literal('signed'),
    Type.Literal('verified'),
    Type.Literal('majority'),
    Type.Null(),
  ]),
  price: Type.Union([Amount, Type.Null()]),
  error: Type.Optional(Type.String()),
})
export type JobView = Static<typeof JobView>

/** `GET /api/jobs`. */
export const JobListView = Type.Object({ jobs: Type.Array(JobView) })
export type JobListView = Static<typeof JobListView>

/** A sensor's latest reading of one kind, checked, with its quality flag and its last judged score. */
export const SensorReadingView = Type.Object({
  /** The device key (peer id) that signed it, and the node that certified the device. */
  sensor: Type.String(),
  node: Type.String(),
  /** The hardware maker whose certificate of the device was checked (peer id); absent: none. */
  maker: Type.Optional(Type.String()),
  kind: Type.String(),
  value: Type.Number(),
  unit: Type.String(),
  /** When measured (ms since the unix epoch, the device's clock) and when this API received it. */
  at: Type.Integer(),
  receivedAt: Type.Integer(),
  /** The coarse H3 cell (resolution 5) and its centre: never the sensor's exact place. */
  cell: Type.String(),
  lat: Type.Number(),
  lon: Type.Number(),
  /** From `near`, when the query gave one (km). */
  distanceKm: Type.Optional(Type.Integer()),
  quality: Type.Object({
    flag: Type.Union([Type.Literal('ok'), Type.Literal('suspect')]),
    reasons: Type.Array(Type.String()),
  }),
  /** The verifiers' judgement in the newest posted epoch that judged it (null: not yet). */
  score: Type.Union([
    Type.Object({
      epoch: Type.Integer(),
      scorePpm: Type.Integer(),
      qualityPpm: Type.Integer(),
      locationPpm: Type.Integer(),
      paid: Type.Boolean(),
      reason: Type.String(),
    }),
    Type.Null(),
  ]),
})
export type SensorReadingView = Static<typeof SensorReadingView>

/** `GET /api/sensors/latest`. */
export const SensorListView = Type.Object({ readings: Type.Array(SensorReadingView) })
export type SensorListView = Static<typeof SensorListView>

/** Query of `GET /api/sensors/latest`: `near=LAT,LON` with `radius` km, a kind, a limit. */
export const SensorQuery = Type.Object(
  {
    near: Type.Optional(
      Type.String({ pattern: '^-?[0-9]{1,2}(\\.[0-9]{1,8})?,-?[0-9]{1,3}(\\.[0-9]{1,8})?$', maxLength: 32 }),
    ),
    radius: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 20_000 })),
    kind: Type.Optional(
      Type.Union([
        Type.Literal('temperature'),
        Type.Literal('humidity'),
        Type.Literal('pressure'),
        Type.Literal('pm25'),
      ]),
    ),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
  },
  { additionalProperties: false },
)

/** A governable value: its key (docs/governance.md), unit, the value in the unit's base, and for people. */
export const GovernableValueView = Type.Object({
  key: Type.String(),
  unit: Type.String(),
  /** Base units as a decimal string (MESH in base units, 18 decimals). */
  value: Type.String({ pattern: '^[0-9]{1,78}$' }),
  display: Type.String(),
  description: Type.String(),
})
export type GovernableValueView = Static<typeof GovernableValueView>

/** A parameter a proposal or a version changes: from (null when not known) and to. */
export const ParamChangeView = Type.Object({
  key: Type.String(),
  from: Type.Union([Type.String({ pattern: '^[0-9]{1,78}$' }), Type.Null()]),
  to: Type.String({ pattern: '^[0-9]{1,78}$' }),
  fromDisplay: Type.Union([Type.String(), Type.Null()]),
  toDisplay: Type.String(),
})
export type ParamChangeView = Static<typeof ParamChangeView>

/** A reward parameter version as NetworkParams holds it. */
export const ParamsVersionView = Type.Object({
  version: Type.Integer(),
  /** The first epoch it is in force. */
  fromEpoch: Type.Integer(),
  /** False when a later version applies from the same epoch (two changes in one epoch: the later wins). */
  applied: Type.Boolean(),
  /** Its values, and what it changed from the version before (empty for version 1). */
  values: Type.Array(GovernableValueView),
  changes: Type.Array(ParamChangeView),
  /** The hardware makers it approves (peer ids), and in words what that changed (null: nothing). */
  makers: Type.Array(Type.String()),
  makersChange: Type.Union([Type.String(), Type.Null()]),
})
export type ParamsVersionView = Static<typeof ParamsVersionView>

/** The states of a MeshGovernor proposal. */
export const ProposalState = Type.Union([
  Type.Literal('pending'),
  Type.Literal('active'),
  Type.Literal('canceled'),
  Type.Literal('defeated'),
  Type.Literal('succeeded'),
  Type.Literal('queued'),
  Type.Literal('expired'),
  Type.Literal('executed'),
])

/** A proposal to MeshGovernor: its state, votes and the parameters it would change. */
export const ProposalView = Type.Object({
  /** The proposal id (a uint256) as a decimal string. */
  id: Type.String({ pattern: '^[0-9]{1,78}$' }),
  proposer: Address,
  description: Type.String(),
  state: ProposalState,
  /** One sentence on what it waits for ("active: voting until …", "queued: executable from …"). */
  summary: Type.String(),
  /** Votes (MESH base units) for, against and abstaining, and the quorum (for + abstain) it needs. */
  votes: Type.Object({ for: Amount, against: Amount, abstain: Amount }),
  quorum: Type.Union([Amount, Type.Null()]),
  /** Chain times (unix seconds): votes counted at, the vote's last second, executable from (0: not queued). */
  snapshot: Type.Integer(),
  deadline: Type.Integer(),
  eta: Type.Integer(),
  block: Type.Integer(),
  /** The parameters it sets; `from` is the value it replaces (null when no longer known: executed). */
  changes: Type.Array(ParamChangeView),
  /** Its calls, by contract and function (a call that sets no known parameter shows only here). */
  calls: Type.Array(Type.Object({ contract: Type.String(), functionName: Type.String() })),
  /** What it does to the approved hardware makers, in words ("approves maker …"); null: nothing. */
  makers: Type.Union([Type.String(), Type.Null()]),
})
export type ProposalView = Static<typeof ProposalView>

/** `GET /api/governance`. */
export const GovernanceView = Type.Object({
  /** The epoch the chain's clock is in, and the reward parameter version in force in it. */
  epoch: Type.Integer(),
  version: Type.Integer(),
  fromEpoch: Type.Integer(),
  /** Every governable value in force (a newer version that applies from a later epoch is in `history`). */
  params: Type.Array(GovernableValueView),
  /** The hardware makers approved in the version in force (peer ids). */
  makers: Type.Array(Type.String()),
  /** Every reward parameter version, newest first. */
  history: Type.Array(ParamsVersionView),
  /** Every proposal, newest first. */
  proposals: Type.Array(ProposalView),
})
export type GovernanceView = Static<typeof GovernanceView>

/** A proposal id in a path: a uint256 in decimal. */
export const ProposalIdParam = Type.String({ pattern: '^[0-9]{1,78}$', maxLength: 78 })

/** Query of list routes. */
export const LimitQuery = Type.Object(
  { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })) },
  { additionalProperties: false },
)
