import { Counter, Gauge, Registry } from 'prom-client'
import { connectChain } from '../chain/client.js'
import { computeTopic, FRAUD_EVIDENCE, SLASH_SIGNATURE, WORK_RECEIPT } from '../compute/receipts.js'
import { SandboxPool } from '../compute/sandbox-pool.js'
import type { Clock } from '../core/clock.js'
import type { Logger } from '../core/logger.js'
import { createMeshLibp2p, type MeshLibp2p } from '../mesh/create-libp2p.js'
import { createLibp2pPort } from '../mesh/libp2p-port.js'
import type { NetworkPort } from '../mesh/network-port.js'
import { createPeerSigner, createPeerVerifier } from '../mesh/peer-key.js'
import { createWireCodec, networkIdOf } from '../mesh/wire-codec.js'
import { followAdvertisedAddresses } from '../node/ad-addresses.js'
import { ADVERTISEMENT } from '../node/advertisement.js'
import { type OpsResponse, type OpsServer, startOpsServer } from '../node/ops-server.js'
import { lowerAddress } from '../rewards/index.js'
import { SENSOR_READING } from '../sensors/reading.js'
import { BANDWIDTH_RECEIPT, STORAGE_RECEIPT } from '../storage/protocol.js'
import { bundleCid, checkBundle, type Settlement, settleBundle } from './bundle.js'
import { createEvmNodeSlasher, createEvmRootPoster, createEvmVerifierChain } from './chain-port.js'
import { observationTopic } from './challenger.js'
import { ComputeAuditor } from './compute-auditor.js'
import { EpochCloser, epochTopic } from './epoch-closer.js'
import { EPOCH_ATTESTATION, EPOCH_PROPOSAL } from './leader.js'
import {
  BANDWIDTH_OBSERVATION,
  COMPUTE_OBSERVATION,
  SENSOR_OBSERVATION,
  STORAGE_OBSERVATION,
  UPTIME_OBSERVATION,
} from './observation.js'
import { StorageRepairer } from './storage-repairer.js'
import { openVerifierStore, type VerifierStore } from './store.js'
import { VerifierAgent } from './verifier-agent.js'
import { type LoadedVerifierDir, placeOf } from './verifier-dir.js'

/** A running verifier: `meshwork verifier start`'s parts, stopped in reverse order by `stop()`. */
export interface VerifierService {
  readonly peerId: string
  readonly address: `0x${string}`
  readonly libp2p: MeshLibp2p
  readonly port: NetworkPort
  readonly agent: VerifierAgent
  readonly closer: EpochCloser
  readonly auditor: ComputeAuditor
  readonly store: VerifierStore
  readonly metrics: Registry
  /** The ops server's base URL (metrics, health, status, bundles, proofs). */
  readonly opsUrl: string
  /** Mesh addresses, with /p2p/ID. */
  addresses(): string[]
  status(): VerifierStatus
  stop(): Promise<void>
}

/** What `GET /status` answers. */
export interface VerifierStatus {
  peerId: string
  address: `0x${string}`
  network: string
  /** The epoch the chain is in. */
  epoch: number
  /** The newest epoch whose root this verifier has seen posted, or null. */
  lastPostedEpoch: number | null
  peers: number
  observations: { accepted: number; refused: number }
  /** Work receipts and fraud evidence taken in or refused, frauds confirmed, slashes submitted. */
  compute: ComputeAuditor['counts']
  proposalsRefused: Record<string, number>
  /** Sensor readings kept and dropped (by reason), and the coarse cells followed. */
  sensors: { kept: number; dropped: Record<string, number>; cells: number }
  addresses: string[]
}

/**
 * Starts a verifier from its loaded directory: store, chain client, libp2p and network port, the
 * agent (challenges, observations) and the epoch closer (bundles, attestations, posting), and the
 * ops server. On a failure midway, what started is stopped again.
 */
export async function startVerifierService(
  loaded: LoadedVerifierDir,
  components: { clock: Clock; logger: Logger; rpc?: string },
): Promise<VerifierService> {
  const { config, identity, network } = loaded
  const { clock, logger } = components
  const net = networkIdOf(network)
  const stack: { name: string; stop: () => Promise<void> | void }[] = []
  const stopAll = async () => {
    for (const part of stack.splice(0).reverse()) {
      await Promise.resolve(part.stop()).catch((err: unknown) =>
        logger.warn({ err, part: part.name }, 'failed to stop'),
      )
    }
  }
  try {
    const store = openVerifierStore(loaded.databasePath)
    stack.push({ name: 'store', stop: () => store.close() })
    const client = await connectChain({
      chainId: network.chainId,
      contracts: network.contracts,
      rpc: components.rpc || config.chain.rpc || network.rpcUrl,
      privateKey: identity.operatorKey,
    })
    const libp2p = await createMeshLibp2p({
      privateKey: identity.peerKey,
      listen: [...config.mesh.listen],
      bootstrap: [...network.bootstrap, ...config.mesh.bootstrap],
      mdns: config.mesh.mdns,
      scoredTopics: [observationTopic(net), epochTopic(net), computeTopic(net)],
    })
    const port = createLibp2pPort(libp2p, { logger: logger.child({ module: 'mesh' }) })
    stack.push({ name: 'mesh', stop: () => port.close() })
    const codec = createWireCodec({
      network: net,
      signer: createPeerSigner(identity.peerKey),
      clock,
      types: [
        UPTIME_OBSERVATION,
        COMPUTE_OBSERVATION,
        STORAGE_OBSERVATION,
        STORAGE_RECEIPT,
        BANDWIDTH_OBSERVATION,
        BANDWIDTH_RECEIPT,
        SENSOR_OBSERVATION,
        SENSOR_READING,
        EPOCH_PROPOSAL,
        EPOCH_ATTESTATION,
        WORK_RECEIPT,
        FRAUD_EVIDENCE,
        SLASH_SIGNATURE,
        ADVERTISEMENT,
      ],
      nextSeq: (type) => store.nextSeq(type),
    })
    // Nodes are challenged by peer id: keep where their advertisements say they are (a node behind
    // NAT is reached at its relay's circuit, which the DHT does not find).
    const stopAds = followAdvertisedAddresses(
      { network: net },
      { port, codec, peerStore: libp2p.peerStore, logger: logger.child({ module: 'ads' }) },
    )
    stack.push({ name: 'ads', stop: stopAds })
    const chain = createEvmVerifierChain(client, { deployBlock: BigInt(network.deployBlock) })
    const schedule = {
      genesisTime: network.parameters.genesisTime,
      epochDuration: network.parameters.epochDuration,
    }
    // Made below, after the agent it reads epochs from; the agent's challenger waits for its re-runs.
    let auditor: ComputeAuditor | undefined
    const common = {
      port,
      clock,
      store,
      codec,
      chain,
      verifier: createPeerVerifier(),
      logger,
      computeSettled: () => auditor?.settled() ?? Promise.resolve(),
      repairer: new StorageRepairer({ port, codec, store, logger: logger.child({ module: 'repair' }) }),
    }
    const v = config.verifier
    const agent = new VerifierAgent(
      {
        network: net,
        schedule,
        challengesPerEpoch: v.challengesPerEpoch,
        challengeTimeoutMs: v.challengeTimeoutMs,
        storageChallengesPerShard: v.storageChallengesPerShard,
        storageTimeoutMs: v.storageTimeoutMs,
        pollMs: v.pollMs,
        ...(v.h3Cell === '' ? {} : { place: placeOf(v.h3Cell) }),
      },
      common,
    )
    const closer = new EpochCloser(
      {
        network: net,
        schedule,
        emission: {
          initialEmission: BigInt(network.parameters.initialEmission),
          halvingInterval: BigInt(network.parameters.halvingInterval),
        },
        graceMs: v.graceSeconds * 1_000,
        leaderTimeoutMs: v.leaderTimeoutSeconds * 1_000,
        tickMs: v.pollMs,
      },
      { ...common, poster: createEvmRootPoster(client), plan: (e) => agent.planned(e) },
    )
    // Re-runs jobs from fraud evidence: one sandbox, so a verifier's own work is never starved.
    const pool = new SandboxPool({ size: 1 })
    stack.push({ name: 'sandbox', stop: () => pool.close() })
    const computeAuditor = new ComputeAuditor(
      { network: net, slashAmount: BigInt(network.parameters.minNodeStake) },
      {
        port,
        codec,
        store,
        verifier: common.verifier,
        logger: logger.child({ module: 'compute' }),
        epochNow: () => agent.epochAt(agent.chainNow()),
        epochAt: (ms) => agent.epochAtLocal(ms),
        registry: (epoch) => agent.registryAt(epoch),
        rerun: async (e) => {
          try {
            const run = await pool.run({
              kind: e.spec.kind,
              code: e.code,
              input: e.input,
              limits: e.spec.limits,
              seed: e.spec.id,
              now: e.spec.deadline,
            })
            return run.output
          } catch {
            // The job fails here too (time, memory): nothing to compare.
            return undefined
          }
        },
        slasher: createEvmNodeSlasher(client),
      },
    )
    agent.start()
    stack.push({ name: 'agent', stop: () => agent.stop() })
    auditor = computeAuditor
    computeAuditor.start()
    stack.push({ name: 'auditor', stop: () => computeAuditor.stop() })
    closer.start()
    stack.push({ name: 'closer', stop: () => closer.stop() })

    const addresses = () => libp2p.getMultiaddrs().map((a) => a.toString())
    const status = (): VerifierStatus => ({
      peerId: identity.peerId,
      address: identity.address,
      network: net,
      epoch: agent.epochAt(agent.chainNow()),
      lastPostedEpoch: store.latestRoot()?.epoch ?? null,
      peers: libp2p.getPeers().length,
      observations: { ...agent.counts },
      compute: { ...computeAuditor.counts },
      proposalsRefused: Object.fromEntries(closer.refused),
      sensors: {
        ...agent.sensors.counts,
        dropped: { ...agent.sensors.counts.dropped },
        cells: agent.sensors.cells.length,
      },
      addresses: addresses(),
    })
    const metrics = createVerifierMetrics(status)
    const ops: OpsServer = await startOpsServer({
      listen: config.api.listen,
      registry: metrics,
      status,
      healthy: () => libp2p.status === 'started',
      routes: verifierRoutes(store, { network: net, verifier: createPeerVerifier() }),
    })
    stack.push({ name: 'ops', stop: () => ops.close() })
    return {
      peerId: identity.peerId,
      address: identity.address,
      libp2p,
      port,
      agent,
      closer,
      auditor: computeAuditor,
      store,
      metrics,
      opsUrl: ops.url,
      addresses,
      status,
      stop: stopAll,
    }
  } catch (err) {
    await stopAll()
    throw err
  }
}

/** The verifier's Prometheus metrics, read from its status when scraped. */
function createVerifierMetrics(status: () => VerifierStatus): Registry {
  const registry = new Registry()
  let snapshot = status()
  new Gauge({
    name: 'meshwork_verifier_epoch',
    help: 'The epoch the chain is in',
    registers: [registry],
    collect() {
      // The first collector of a scrape takes the snapshot the others read.
      snapshot = status()
      this.set(snapshot.epoch)
    },
  })
  new Gauge({
    name: 'meshwork_verifier_last_posted_epoch',
    help: 'The newest epoch whose root is posted (-1 before the first)',
    registers: [registry],
    collect() {
      this.set(snapshot.lastPostedEpoch ?? -1)
    },
  })
  new Gauge({
    name: 'meshwork_verifier_peers',
    help: 'Connected peers',
    registers: [registry],
    collect() {
      this.set(snapshot.peers)
    },
  })
  new Counter({
    name: 'meshwork_verifier_observations_total',
    help: 'Other verifiers’ observations taken in (accepted) or dropped (refused)',
    labelNames: ['result'] as const,
    registers: [registry],
    collect() {
      this.reset()
      this.inc({ result: 'accepted' }, snapshot.observations.accepted)
      this.inc({ result: 'refused' }, snapshot.observations.refused)
    },
  })
  new Counter({
    name: 'meshwork_verifier_compute_total',
    help: 'Compute messages: receipts and evidence taken in or refused, frauds confirmed, slashes submitted',
    labelNames: ['event'] as const,
    registers: [registry],
    collect() {
      this.reset()
      for (const [event, n] of Object.entries(snapshot.compute)) this.inc({ event }, n)
    },
  })
  new Counter({
    name: 'meshwork_verifier_proposals_refused_total',
    help: 'Epoch proposals refused, by reason',
    labelNames: ['reason'] as const,
    registers: [registry],
    collect() {
      this.reset()
      for (const [reason, n] of Object.entries(snapshot.proposalsRefused)) this.inc({ reason }, n)
    },
  })
  new Counter({
    name: 'meshwork_verifier_sensor_readings_total',
    help: 'Sensor readings kept, or dropped by reason (forged, replayed, unregistered node, wrong cell, over a cap)',
    labelNames: ['result'] as const,
    registers: [registry],
    collect() {
      this.reset()
      this.inc({ result: 'kept' }, snapshot.sensors.kept)
      for (const [reason, n] of Object.entries(snapshot.sensors.dropped)) this.inc({ result: reason }, n)
    },
  })
  new Gauge({
    name: 'meshwork_verifier_sensor_cells',
    help: 'Coarse H3 cells whose sensor readings this verifier follows',
    registers: [registry],
    collect() {
      this.set(snapshot.sensors.cells)
    },
  })
  return registry
}

const CID_PATH = /^\/bundles\/(b[a-z2-7]{20,120})$/
const PROOF_PATH = /^\/proofs\/(0x[0-9a-fA-F]{40})$/

/**
 * The verifier's public read routes on its ops port: `GET /bundles/CID` (the bundle's canonical
 * bytes, as over the mesh) and `GET /proofs/ADDRESS[?epoch=N]` (the account's cumulative amount and
 * Merkle proof in epoch N's posted tree, default the newest this verifier holds).
 */
export function verifierRoutes(
  store: VerifierStore,
  options: { network: string; verifier: ReturnType<typeof createPeerVerifier> },
): (path: string, query: URLSearchParams) => OpsResponse | undefined {
  const json = (status: number, body: unknown): OpsResponse => ({
    status,
    contentType: 'application/json',
    body: JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)),
  })
  let cached: { cid: string; settlement: Settlement } | undefined
  return (path, query) => {
    const bundle = CID_PATH.exec(path)
    if (bundle) {
      const held = store.bundle(bundle[1] as string)
      return held === undefined
        ? json(404, { error: { code: 'BUNDLE_UNAVAILABLE', message: 'no such bundle here' } })
        : { status: 200, contentType: 'application/json', body: held.bytes }
    }
    const proof = PROOF_PATH.exec(path)
    if (!proof) return undefined
    const epochParam = query.get('epoch')
    if (epochParam !== null && !/^\d{1,9}$/.test(epochParam))
      return json(400, { error: { code: 'INVALID_ARGUMENT', message: 'epoch must be a whole number' } })
    const root = epochParam === null ? store.latestRoot() : store.root(Number(epochParam))
    if (root === undefined)
      return json(404, { error: { code: 'EPOCH_NOT_POSTED', message: 'no posted root held for that epoch' } })
    const held = store.bundle(bundleCid(root.digest))
    if (held === undefined)
      return json(404, {
        error: { code: 'BUNDLE_UNAVAILABLE', message: 'this verifier does not hold the bundle' },
      })
    if (cached?.cid !== held.cid) {
      const checked = checkBundle(held.bytes, {
        ...options,
        previousRoot: store.root(root.epoch - 1)?.root ?? null,
      })
      if (!checked.ok) return json(500, { error: { code: 'BUNDLE_INVALID', message: checked.fault } })
      cached = { cid: held.cid, settlement: settleBundle(checked.bundle) }
    }
    if (cached.settlement.root !== root.root.toLowerCase())
      return json(500, {
        error: { code: 'ROOT_MISMATCH', message: 'the held bundle does not settle to the root' },
      })
    const account = lowerAddress(proof[1] as string)
    const leaf = cached.settlement.tree.proof(account)
    if (leaf === undefined)
      return json(404, {
        error: { code: 'NOT_IN_ROOT', message: `${account} has no leaf in epoch ${root.epoch}` },
      })
    return json(200, {
      epoch: root.epoch,
      root: root.root,
      account,
      cumulativeAmount: leaf.cumulativeAmount,
      proof: leaf.proof,
    })
  }
}
