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

/** Query of list routes. */
export const LimitQuery = Type.Object(
  { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })) },
  { additionalProperties: false },
)
