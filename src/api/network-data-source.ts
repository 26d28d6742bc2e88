import { cellToLatLng, isValidCell } from 'h3-js'
import type { Hex } from 'viem'
import { epochRewardsAbi } from '../chain/abi/index.js'
import { getGovernableValues } from '../chain/actions/get-governable-values.js'
import { getNetworkParamsHistory } from '../chain/actions/get-network-params-history.js'
import { getNode } from '../chain/actions/get-node.js'
import { getProposal } from '../chain/actions/get-proposal.js'
import { listProposals } from '../chain/actions/list-proposals.js'
import { nodeIdOf } from '../chain/actions/register-node.js'
import type { ChainReader } from '../chain/client.js'
import { explainMakersChange, explainProposal } from '../chain/explain-proposal.js'
import {
  decodeGovernanceCall,
  formatGovernable,
  GOVERNABLE_KEYS,
  type GovernableValues,
  paramsToValues,
} from '../chain/governable.js'
import { makerPeerIdOf } from '../chain/maker-key.js'
import type { NetworkFile } from '../chain/network-file.js'
import { servicesOf } from '../chain/services.js'
import type { Clock, Timer } from '../core/clock.js'
import { isMeshworkError } from '../core/errors.js'
import type { Logger } from '../core/logger.js'
import type { PeerVerifier } from '../mesh/peer-key.js'
import { peerIdBytes } from '../mesh/peer-key.js'
import { networkIdOf } from '../mesh/wire-codec.js'
import { emissionOf } from '../rewards/emission.js'
import { type AuditContext, auditEpoch, type BundleSource, type EpochAudit } from '../verifier/audit.js'
import { bundleCid } from '../verifier/bundle.js'
import type { RegistrySnapshot, VerifierChain } from '../verifier/chain-port.js'
import type { ApiDataSource, ApiEvent } from './data-source.js'
import { ApiError } from './errors.js'
import type { Health } from './health-prober.js'
import type { JobLog } from './job-log.js'
import type {
  EpochDetailView,
  EpochListView,
  EpochView,
  GovernableValueView,
  GovernanceView,
  NodeDetailView,
  NodeEpochView,
  NodeStorageEpochView,
  NodeStorageSummary,
  NodeView,
  ParamChangeView,
  ProposalView,
  SensorReadingView,
} from './schemas.js'
import type { FeedQuery, FeedReading, SensorFeed } from './sensor-feed.js'
import type { StorageFeed } from './storage-feed.js'

/** What {@link createNetworkDataSource} is configured with. */
export interface NetworkDataSourceInit {
  network: NetworkFile
  /** A name for people per peer id (the devnet's "node-0 (Berlin)"). */
  label?: (peerId: string) => string | undefined
  /** How often live changes are looked for while someone listens (default 1 s). */
  pollMs?: number
  /** Posted epochs whose recomputed bundles are kept (default 32). */
  keepAudits?: number
  /** The registry is read again once the head is this many blocks past the last read (default 5). */
  registryEveryBlocks?: number
  /** How often governance is looked at for changes while someone listens (default 5 s). */
  governancePollMs?: number
}

/** What {@link createNetworkDataSource} reads. */
export interface NetworkDataSourceComponents {
  reader: ChainReader
  chain: Pick<VerifierChain, 'head' | 'registry' | 'postedRoots' | 'paramsAt'>
  /** Where bundles are fetched by CID (verifiers' ops ports); asked again on every fetch. */
  bundles: () => readonly BundleSource[]
  health: { health(id: string): Health; onChange(listener: (id: string, h: Health) => void): () => void }
  jobs: Pick<JobLog, 'list' | 'subscribe'>
  verifier: PeerVerifier
  clock: Clock
  logger: Logger
  /** Sensor readings heard on the mesh (none: the source serves no sensors). */
  sensors?: SensorFeed
  /** Storage receipts heard on the mesh (none: the source serves no storage figures). */
  storage?: Pick<StorageFeed, 'held'>
}

/** A network data source, with `close()` to stop its polling. */
export interface NetworkDataSource extends ApiDataSource {
  close(): void
}

/** Epochs of a node's history in `GET /api/nodes/:peerId`. */
const NODE_EPOCHS = 10

interface NodeStatic {
  services: string[]
  h3Cell: string
  lat: number | null
  lon: number | null
}

/**
 * The API's data from a Meshwork network: the chain (registry, posted roots, claims, by viem reads
 * of our contracts), posted epochs recomputed from their bundles (fetched from verifiers and
 * checked against the posted digest, so a source cannot lie), health checks and a job log. Reads are
 * cached per block; nothing depends on this machine's clock but `lastSeen` and the poll timer.
 */
export function createNetworkDataSource(
  init: NetworkDataSourceInit,
  components: NetworkDataSourceComponents,
): NetworkDataSource {
  const { network } = init
  const { reader, chain, clock, logger } = components
  const genesisTime = network.parameters.genesisTime
  const epochDuration = network.parameters.epochDuration
  const schedule = {
    initialEmission: BigInt(network.parameters.initialEmission),
    halvingInterval: BigInt(network.parameters.halvingInterval),
  }
  const epochOf = (timestamp: number) => Math.max(0, Math.floor((timestamp - genesisTime) / epochDuration))
  const netId = networkIdOf(network)

  // ── chain reads, cached per head block ──
  let registryCache: { block: bigint; snapshot: Promise<RegistrySnapshot> } | undefined
  const statics = new Map<string, NodeStatic>()
  const registryBlocks = BigInt(init.registryEveryBlocks ?? 5)
  const registry = async (block: bigint) => {
    // Re-read every few blocks only: a registration shows within seconds, and reading the registry
    // (events, then a call or two per node) every block would compete with the verifiers for the chain.
    if (
      registryCache === undefined ||
      block < registryCache.block ||
      block - registryCache.block >= registryBlocks
    ) {
      const snapshot = chain.registry(block)
      registryCache = { block, snapshot }
      // The sensor feed follows the coarse cells of every registered node.
      const feed = components.sensors
      if (feed !== undefined)
        snapshot.then((s) => feed.follow(s.nodes.map((n) => n.h3Cell))).catch(() => undefined)
      // Services and cells can change (NodeUpdated): read them again with the registry.
      statics.clear()
      snapshot.catch(() => {
        if (registryCache?.snapshot === snapshot) registryCache = undefined
      })
    }
    return registryCache.snapshot
  }
  const nodeStatic = async (peerId: string): Promise<NodeStatic> => {
    const known = statics.get(peerId)
    if (known !== undefined) return known
    const record = await getNode(reader, nodeIdOf(peerIdBytes(peerId)))
    const h3Cell = record.h3Cell.toString(16)
    const [lat, lon] = isValidCell(h3Cell) ? cellToLatLng(h3Cell) : [null, null]
    const value = { services: servicesOf(record.services), h3Cell, lat, lon }
    statics.set(peerId, value)
    return value
  }
  const blockTimes = new Map<bigint, number>()
  const blockTime = async (n: bigint) => {
    let t = blockTimes.get(n)
    if (t === undefined) {
      t = Number((await reader.public.getBlock({ blockNumber: n })).timestamp)
      blockTimes.set(n, t)
    }
    return t
  }

  // Claims, scanned from the deploy block on, incrementally.
  const claims: { account: string; amount: bigint; block: bigint }[] = []
  let claimsTo = BigInt(network.deployBlock) - 1n
  let claimScan: Promise<void> = Promise.resolve()
  const scanClaims = (head: bigint) => {
    claimScan = claimScan
      .catch(() => undefined)
      .then(async () => {
        if (head <= claimsTo) return
        const logs = await reader.public.getContractEvents({
          address: network.contracts.EpochRewards,
          abi: epochRewardsAbi,
          eventName: 'Claimed',
          fromBlock: claimsTo + 1n,
          toBlock: head,
        })
        for (const l of logs) {
          const args = l.args as { account: `0x${string}`; amount: bigint }
          claims.push({
            account: args.account.toLowerCase(),
            amount: args.amount,
            block: l.blockNumber as bigint,
          })
        }
        claimsTo = head
      })
    return claimScan
  }

  // Posted epochs recomputed from their bundles, by epoch and root (a revoked and re-posted epoch is another).
  const audits = new Map<string, Promise<EpochAudit>>()
  const keepAudits = init.keepAudits ?? 32
  const audit = (epoch: number, root: Hex): Promise<EpochAudit> => {
    const key = `${epoch}:${root}`
    let held = audits.get(key)
    if (held === undefined) {
      const ctx: AuditContext = {
        chain,
        schedule: { genesisTime, epochDuration },
        sources: components.bundles(),
        network: netId,
        verifier: components.verifier,
      }
      held = auditEpoch(epoch, ctx)
      audits.set(key, held)
      held.catch(() => audits.delete(key))
      if (audits.size > keepAudits) audits.delete(audits.keys().next().value as string)
    }
    return held
  }
  /** The audit of the newest posted epoch, or undefined (none posted, or no bundle source has it). */
  const newestAudit = async (roots: Awaited<ReturnType<VerifierChain['postedRoots']>>) => {
    if (roots.size === 0) return undefined
    const e = Math.max(...roots.keys())
    try {
      return await audit(e, (roots.get(e) as { root: Hex }).root)
    } catch (err) {
      logger.debug({ err, epoch: e }, 'could not recompute the newest epoch')
      return undefined
    }
  }

  const amount = (v: bigint) => v.toString()

  // The verifiers' newest judgement of each sensor (device), from the newest recomputed epoch.
  type SensorScore = NonNullable<SensorReadingView['score']>
  let lastScores = new Map<string, SensorScore>()
  const sensorScores = async (): Promise<Map<string, SensorScore>> => {
    const a = await newestAudit(await chain.postedRoots())
    if (a === undefined) return lastScores
    const scores = new Map<string, SensorScore>()
    for (const node of a.settlement.rewards.sensor)
      for (const s of node.sensors)
        scores.set(s.device, {
          epoch: a.epoch,
          scorePpm: s.scorePpm,
          qualityPpm: s.qualityPpm,
          locationPpm: s.locationPpm,
          paid: s.paid,
          reason: s.reason,
        })
    lastScores = scores
    return scores
  }

  const nodeViews = async (): Promise<{
    views: NodeView[]
    snapshot: RegistrySnapshot
    roots: Awaited<ReturnType<VerifierChain['postedRoots']>>
  }> => {
    const head = await chain.head()
    const [snapshot, roots] = await Promise.all([registry(head.number), chain.postedRoots()])
    const latest = await newestAudit(roots)
    const epochNow = epochOf(head.timestamp)
    const views = await Promise.all(
      snapshot.nodes.map(async (n): Promise<NodeView> => {
        const s = await nodeStatic(n.peerId)
        const health = components.health.health(n.peerId)
        const uptime = latest?.settlement.rewards.uptime.explain(n.peerId)
        const operator = n.operator.toLowerCase() as `0x${string}`
        const label = init.label?.(n.peerId)
        return {
          peerId: n.peerId,
          operator: n.operator,
          ...(label === undefined ? {} : { label }),
          services: s.services,
          h3Cell: s.h3Cell,
          lat: s.lat,
          lon: s.lon,
          stake: amount(n.stake),
          registeredAt: n.registeredAt,
          online: health.online,
          lastSeen: health.lastSeen,
          uptimePpm: uptime?.scorePpm ?? null,
          lastReward: latest === undefined ? null : amount(nodeReward(latest, n.peerId)),
          earned: amount(latest?.settlement.tree.proof(operator)?.cumulativeAmount ?? 0n),
          ...(components.storage === undefined
            ? {}
            : { storage: storageSummary(components.storage.held(n.peerId, epochNow), latest, n.peerId) }),
        }
      }),
    )
    views.sort((a, b) => (a.label ?? a.peerId).localeCompare(b.label ?? b.peerId))
    return { views, snapshot, roots }
  }

  const epochViews = async (limit: number): Promise<EpochListView> => {
    const head = await chain.head()
    const [roots] = await Promise.all([chain.postedRoots(), scanClaims(head.number)])
    const sorted = [...roots.keys()].sort((a, b) => b - a)
    const epochs: EpochView[] = []
    for (const e of sorted.slice(0, limit)) {
      const r = roots.get(e) as { root: Hex; digest: Hex; totalCumulative: bigint; block: bigint }
      const before = roots.get(e - 1)?.totalCumulative ?? (sorted.includes(e - 1) ? 0n : undefined)
      let claimed = 0n
      for (const c of claims) if (claimEpoch(roots, c.block) === e) claimed += c.amount
      epochs.push({
        epoch: e,
        root: r.root,
        cid: bundleCid(r.digest),
        block: Number(r.block),
        postedAt: await blockTime(r.block),
        emitted: amount(emissionOf(schedule, BigInt(e))),
        paid: amount(r.totalCumulative - (before ?? previousTotal(roots, e))),
        totalCumulative: amount(r.totalCumulative),
        claimed: amount(claimed),
      })
    }
    return { epochs, current: epochOf(head.timestamp) }
  }

  // Governance: the parameter versions, every governable value and every proposal, read once a block.
  let governanceCache: { block: bigint; view: Promise<GovernanceView> } | undefined
  const governance = async (): Promise<GovernanceView> => {
    const head = await chain.head()
    if (governanceCache === undefined || governanceCache.block !== head.number) {
      const view = readGovernance(epochOf(head.timestamp))
      governanceCache = { block: head.number, view }
      view.catch(() => {
        if (governanceCache?.view === view) governanceCache = undefined
      })
    }
    return governanceCache.view
  }
  const readGovernance = async (epoch: number): Promise<GovernanceView> => {
    const [history, current, records] = await Promise.all([
      getNetworkParamsHistory(reader),
      getGovernableValues(reader),
      listProposals(reader, { fromBlock: BigInt(network.deployBlock) }),
    ])
    const statuses = await Promise.all(records.map((r) => getProposal(reader, r.proposalId)))
    const inForce =
      [...history].reverse().find((v) => v.fromEpoch <= BigInt(epoch)) ?? (history[0] as (typeof history)[0])
    const valuesOf = history.map((v) => paramsToValues(v.params))
    const makersOf = history.map((v) => v.makers.map(makerPeerIdOf))
    const proposals: ProposalView[] = records.map((r, i) => {
      const status = statuses[i] as (typeof statuses)[number]
      const changes: ParamChangeView[] = []
      const calls = r.calls.map((c) => decodeGovernanceCall(c, network.contracts))
      // A new maker list names the version it replaces too: its words are against that one's list
      // (a version the same proposal's setParams makes keeps the newest list, so that one's).
      const makerWords = calls.flatMap((d) =>
        d.makers === undefined
          ? []
          : [
              explainMakersChange(
                d.baseVersion === undefined
                  ? undefined
                  : (makersOf[d.baseVersion - 1] ?? makersOf[makersOf.length - 1]),
                d.makers,
              ),
            ],
      )
      for (const d of calls) {
        // A new NetworkParams set names the version it replaces: the diff is against that one.
        const base = d.baseVersion === undefined ? undefined : valuesOf[d.baseVersion - 1]
        for (const [key, to] of Object.entries(d.values)) {
          const from =
            base !== undefined ? base[key] : status.state === 'executed' ? undefined : current.values[key]
          if (base !== undefined && from === to) continue
          changes.push(changeView(key, from, to))
        }
      }
      return {
        id: r.proposalId.toString(),
        proposer: r.proposer,
        description: r.description,
        state: status.state,
        summary: explainProposal(status),
        votes: {
          for: amount(status.votes.for),
          against: amount(status.votes.against),
          abstain: amount(status.votes.abstain),
        },
        quorum: status.quorum === undefined ? null : amount(status.quorum),
        snapshot: Number(status.snapshot),
        deadline: Number(status.deadline),
        eta: Number(status.eta),
        block: Number(r.blockNumber),
        changes,
        calls: calls.map((d) => ({ contract: d.contract, functionName: d.functionName })),
        makers: makerWords.length === 0 ? null : makerWords.join('; '),
      }
    })
    const values = { ...current.values, ...paramsToValues(inForce.params) }
    return {
      epoch,
      version: inForce.version,
      fromEpoch: Number(inForce.fromEpoch),
      params: valueViews(values),
      makers: inForce.makers.map(makerPeerIdOf),
      history: history
        .map((v, i) => {
          const before = valuesOf[i - 1]
          const now = valuesOf[i] as GovernableValues
          const makers = makersOf[i] as string[]
          const previous = makersOf[i - 1]
          const same = previous !== undefined && previous.join() === makers.join()
          return {
            makers,
            makersChange: previous === undefined || same ? null : explainMakersChange(previous, makers),
            version: v.version,
            fromEpoch: Number(v.fromEpoch),
            applied: history[i + 1]?.fromEpoch !== v.fromEpoch,
            values: valueViews(now),
            changes:
              before === undefined
                ? []
                : Object.entries(now)
                    .filter(([k, x]) => before[k] !== x)
                    .map(([k, x]) => changeView(k, before[k], x)),
          }
        })
        .reverse(),
      proposals: proposals.reverse(),
    }
  }

  const source: NetworkDataSource = {
    async network() {
      const head = await chain.head()
      const [snapshot, roots] = await Promise.all([registry(head.number), chain.postedRoots()])
      await scanClaims(head.number)
      const epoch = epochOf(head.timestamp)
      const lastPosted = roots.size === 0 ? null : Math.max(...roots.keys())
      let totalClaimed = 0n
      for (const c of claims) totalClaimed += c.amount
      return {
        chainId: network.chainId,
        network: netId,
        contracts: { ...network.contracts },
        genesisTime,
        epochDuration,
        epoch,
        epochEndsAt: genesisTime + (epoch + 1) * epochDuration,
        head: { block: Number(head.number), timestamp: head.timestamp },
        lastPostedEpoch: lastPosted,
        nodes: snapshot.nodes.length,
        nodesOnline: snapshot.nodes.filter((n) => components.health.health(n.peerId).online).length,
        verifiers: snapshot.verifiers.map((v) => {
          const label = init.label?.(v.peerId)
          return {
            peerId: v.peerId,
            address: v.address,
            stake: amount(v.stake),
            online: components.health.health(v.peerId).online,
            ...(label === undefined ? {} : { label }),
          }
        }),
        totalEarned: amount(lastPosted === null ? 0n : (roots.get(lastPosted)?.totalCumulative ?? 0n)),
        totalClaimed: amount(totalClaimed),
        features: [
          'nodes',
          'epochs',
          'jobs',
          ...(components.sensors === undefined ? [] : ['sensors']),
          ...(components.storage === undefined ? [] : ['storage']),
          'governance',
        ],
      }
    },

    async nodes() {
      return (await nodeViews()).views
    },

    async node(peerId) {
      const { views, roots } = await nodeViews()
      const node = views.find((v) => v.peerId === peerId)
      if (node === undefined) return undefined
      await scanClaims((await chain.head()).number)
      const operator = node.operator.toLowerCase()
      const epochs: NodeEpochView[] = []
      const posted = [...roots.keys()].sort((a, b) => b - a).slice(0, NODE_EPOCHS)
      let threshold = 0
      const storageEpochs: NodeStorageEpochView[] = []
      for (const e of posted) {
        let a: EpochAudit
        try {
          a = await audit(e, (roots.get(e) as { root: Hex }).root)
        } catch (err) {
          logger.debug({ err, epoch: e }, 'could not recompute an epoch for a node page')
          continue
        }
        const st = storageEpoch(a, peerId)
        if (st !== undefined) storageEpochs.push(st)
        if (threshold === 0)
          threshold = a.settlement.rewards.uptime.explain(peerId) ? a.params.chain.uptime.thresholdPpm : 0
        const u = a.settlement.rewards.uptime.explain(peerId)
        if (u === undefined) continue
        const c = a.settlement.rewards.compute.find((x) => x.peerId === peerId)
        epochs.push({
          epoch: e,
          scorePpm: u.scorePpm,
          eligible: u.eligible,
          vetting: u.vetting,
          stakeWeight: amount(u.stakeWeight),
          reward: amount(nodeReward(a, peerId)),
          uptimeReward: amount(u.reward),
          verifiers: u.verifiers.map((v) => ({ ...v, verifier: v.verifier })),
          compute:
            c === undefined
              ? null
              : {
                  value: amount(c.value),
                  fraud: c.fraud,
                  reward: amount(c.reward),
                  jobs: Math.max(0, ...c.verifiers.map((v) => v.jobs)),
                },
          explanation: explainUptime(
            u,
            a.params.chain.uptime.thresholdPpm,
            init.label,
            a.params.chain.hardware?.linearBps,
          ),
        })
      }
      let claimed = 0n
      for (const c of claims) if (c.account === operator) claimed += c.amount
      const last = epochs[0]
      const nextEpoch = last === undefined ? 0n : BigInt(last.reward)
      const thresholdPpm = threshold
      // The penalty side: a missed challenge lowers the median fraction by about 1/N of the uptime part.
      const perVerifier = last?.verifiers.map((v) => v.challenges).sort((a, b) => a - b) ?? []
      const challenges = perVerifier[Math.floor(perVerifier.length / 2)] ?? 0
      const perMiss =
        last === undefined || challenges === 0 ? 0n : BigInt(last.uptimeReward) / BigInt(challenges)
      const summary =
        last === undefined
          ? 'No posted epoch includes this node yet: its first estimate comes after its first epoch.'
          : `About ${formatMesh(nextEpoch)} next epoch if it answers as it did in epoch ${last.epoch}` +
            ` (uptime ${(last.scorePpm / 10_000).toFixed(1)}%).` +
            (perMiss > 0n
              ? ` Each challenge it misses (of about ${challenges} per verifier) costs about ${formatMesh(perMiss)};` +
                ' below '
              : ' Below ') +
            `${(thresholdPpm / 10_000).toFixed(0)}% answered (the median across verifiers) it loses the` +
            ` whole uptime part${last.eligible ? `, ${formatMesh(BigInt(last.uptimeReward))},` : ''} for that epoch.`
      const detail: NodeDetailView = {
        node,
        epochs,
        claimed: amount(claimed),
        estimate: { nextEpoch: amount(nextEpoch), thresholdPpm, summary },
      }
      if (components.storage !== undefined) {
        const held = components.storage.held(peerId, epochOf((await chain.head()).timestamp))
        detail.storage = {
          shards: held.length,
          bytes: held.reduce((sum, h) => sum + h.bytes, 0),
          files: new Set(held.map((h) => h.cid)).size,
          held: held.slice(0, 50),
          epochs: storageEpochs,
        }
      }
      return detail
    },

    epochs: epochViews,

    async epoch(n) {
      const roots = await chain.postedRoots()
      const r = roots.get(n)
      if (r === undefined) return undefined
      const [list, a] = await Promise.all([epochViews(Number.MAX_SAFE_INTEGER), audit(n, r.root)])
      const view = list.epochs.find((e) => e.epoch === n)
      if (view === undefined) throw new ApiError('API_EPOCH_NOT_FOUND', `epoch ${n} has no posted root`)
      const rw = a.settlement.rewards
      return {
        epoch: view,
        matches: a.matches,
        paramsVersion: a.params.chain.version,
        pools: Object.fromEntries(Object.entries(rw.pools).map(([k, v]) => [k, amount(v)])),
        dust: amount(rw.dust),
        verifiers: [...rw.uptime.observers],
        nodes: rw.uptime.list().map((u) => ({
          peerId: u.peerId,
          operator: u.operator,
          scorePpm: u.scorePpm,
          eligible: u.eligible,
          vetting: u.vetting,
          reward: amount(nodeReward(a, u.peerId)),
        })),
      } satisfies EpochDetailView
    },

    async jobs(limit) {
      return components.jobs.list(limit)
    },

    ...(components.sensors === undefined
      ? {}
      : {
          async sensors(query: FeedQuery) {
            const feed = components.sensors as SensorFeed
            // Follow the cells as the registry names them now (the feed adds only new ones).
            const head = await chain.head()
            await registry(head.number)
            const scores = await sensorScores()
            return feed.latest(query).map((r) => sensorView(r, scores))
          },
        }),

    governance,

    async proposal(id) {
      return (await governance()).proposals.find((p) => p.id === id.toString())
    },

    subscribe(listener) {
      listeners.add(listener)
      if (listeners.size === 1) startPolling()
      return () => {
        listeners.delete(listener)
        if (listeners.size === 0) stopPolling()
      }
    },

    close() {
      listeners.clear()
      stopPolling()
    },
  }

  // ── live changes: polled while someone listens ──
  const listeners = new Set<(e: ApiEvent) => void>()
  const emit = (e: ApiEvent) => {
    for (const l of listeners) {
      try {
        l(e)
      } catch (err) {
        logger.warn({ err }, 'failed to deliver an API event')
      }
    }
  }
  let timer: Timer | undefined
  let polling = false
  let unsubscribers: (() => void)[] = []
  const seen = { network: '', nodes: new Map<string, string>(), epochs: new Set<number>(), governance: '' }
  /** Governance is read every few seconds only: a vote takes a block, and each read is many calls. */
  const governanceEveryMs = init.governancePollMs ?? 5_000
  let governanceAt = Number.NEGATIVE_INFINITY
  const pollGovernance = async () => {
    if (clock.now() - governanceAt < governanceEveryMs) return
    governanceAt = clock.now()
    const g = await governance()
    // The summaries count seconds down: what changed is the states, the votes and the versions.
    const key = JSON.stringify([
      g.version,
      g.history.length,
      g.proposals.map((p) => [p.id, p.state, p.votes]),
    ])
    if (key !== seen.governance) {
      const first = seen.governance === ''
      seen.governance = key
      if (!first) emit({ type: 'governance', data: g })
    }
  }
  const poll = async () => {
    const net = await source.network()
    const { head: _head, ...netKey } = net
    const key = JSON.stringify(netKey)
    if (key !== seen.network) {
      seen.network = key
      emit({ type: 'network', data: net })
    }
    for (const n of await source.nodes()) {
      const { lastSeen: _lastSeen, ...nodeKey } = n
      const k = JSON.stringify(nodeKey)
      if (seen.nodes.get(n.peerId) !== k) {
        const first = !seen.nodes.has(n.peerId)
        seen.nodes.set(n.peerId, k)
        if (!first || seen.network !== '') emit({ type: 'node', data: n })
      }
    }
    const { epochs } = await epochViews(8)
    for (const e of [...epochs].reverse()) {
      if (seen.epochs.has(e.epoch)) continue
      seen.epochs.add(e.epoch)
      emit({ type: 'epoch', data: e })
    }
    await pollGovernance()
  }
  const startPolling = () => {
    if (polling) return
    polling = true
    unsubscribers = [
      components.jobs.subscribe((job) => emit({ type: 'job', data: job })),
      ...(components.sensors === undefined
        ? []
        : [components.sensors.onReading((r) => emit({ type: 'sensor', data: sensorView(r, lastScores) }))]),
      // A node going offline is told at once, not at the next poll.
      components.health.onChange(() => {
        if (polling) void poll().catch(() => undefined)
      }),
    ]
    const loop = () => {
      void poll()
        .catch((err: unknown) => {
          if (!isMeshworkError(err, 'RPC_UNREACHABLE')) logger.debug({ err }, 'failed to poll for API events')
        })
        .finally(() => {
          if (polling) timer = clock.setTimer(init.pollMs ?? 1_000, loop)
        })
    }
    loop()
  }
  const stopPolling = () => {
    polling = false
    timer?.cancel()
    for (const u of unsubscribers) u()
    unsubscribers = []
  }
  return source
}

/** Everything a node earned in an epoch: its parts of every pool it is explained in. */
function nodeReward(a: EpochAudit, peerId: string): bigint {
  const r = a.settlement.rewards
  let sum = r.uptime.explain(peerId)?.reward ?? 0n
  for (const list of [r.compute, r.storage, r.bandwidth, r.sensor] as { peerId: string; reward: bigint }[][])
    for (const x of list) if (x.peerId === peerId) sum += x.reward
  return sum
}

/** The epoch a claim counts for: the newest root posted at or before its block (the one it claimed against, or newer). */
function claimEpoch(roots: ReadonlyMap<number, { block: bigint }>, block: bigint): number | undefined {
  let best: number | undefined
  for (const [e, r] of roots) if (r.block <= block && (best === undefined || e > best)) best = e
  return best
}

function previousTotal(roots: ReadonlyMap<number, { totalCumulative: bigint }>, epoch: number): bigint {
  let best = -1
  for (const e of roots.keys()) if (e < epoch && e > best) best = e
  return best < 0 ? 0n : (roots.get(best)?.totalCumulative ?? 0n)
}

/** Sentences that say why a node's uptime score is what it is. */
export function explainUptime(
  u: {
    scorePpm: number
    eligible: boolean
    vetting: boolean
    verifiers: { verifier: string; challenges: number; answered: number }[]
    /** The certified device that places it (sets with certified hardware); absent: not told. */
    hardware?: { device: string; maker: string } | null
    certifiedStake?: bigint
  },
  thresholdPpm: number,
  label?: (peerId: string) => string | undefined,
  /** The epoch's share of stake that counts uncapped (`hardware.linearBps`); absent: a set without it. */
  linearBps?: number,
): string[] {
  const lines: string[] = []
  if (u.verifiers.length === 0) lines.push('No verifier observed it this epoch.')
  for (const v of u.verifiers) {
    const name = label?.(v.verifier) ?? `verifier ${v.verifier.slice(0, 12)}…`
    const missed = v.challenges - v.answered
    lines.push(
      v.challenges === 0
        ? `${name} sent it no challenge.`
        : missed === 0
          ? v.challenges === 1
            ? `Answered the one challenge from ${name}.`
            : `Answered all ${v.challenges} challenges from ${name}.`
          : `Missed ${missed} of ${v.challenges} challenges from ${name}.`,
    )
  }
  const pct = (ppm: number) => `${(ppm / 10_000).toFixed(1)}%`
  lines.push(
    u.eligible
      ? `Its score is the median across verifiers, ${pct(u.scorePpm)}, at or above the ${pct(thresholdPpm)} threshold.`
      : `Its score, the median across verifiers, is ${pct(u.scorePpm)}: below the ${pct(thresholdPpm)} threshold, so no uptime reward.`,
  )
  if (u.vetting)
    lines.push('It is new and being vetted: it earns a part of the full weight until it has a record.')
  if (linearBps !== undefined && u.eligible) {
    const linear = `${(linearBps / 100).toFixed(0)}%`
    lines.push(
      u.hardware
        ? `Its certified station (device ${u.hardware.device.slice(0, 12)}…, maker ${u.hardware.maker.slice(0, 12)}…) places it in its cell: ${linear} of its stake counts uncapped and the rest capped, ${formatMesh(u.certifiedStake ?? 0n)} of it.`
        : `No certified hardware places it: ${linear} of its stake counts, and the capped rest only with a device of an approved maker in its cell.`,
    )
  }
  return lines
}

/** MESH with at most 4 decimals, for sentences. */
function formatMesh(v: bigint): string {
  const whole = v / 10n ** 18n
  const frac = ((v % 10n ** 18n) / 10n ** 14n).toString().padStart(4, '0').replace(/0+$/, '')
  return `${whole.toLocaleString('en-US')}${frac ? `.${frac}` : ''} MESH`
}

/** A feed reading with the verifiers' newest score of its sensor. */
function sensorView(
  r: FeedReading & { distanceKm?: number },
  scores: ReadonlyMap<string, NonNullable<SensorReadingView['score']>>,
): SensorReadingView {
  return { ...r, score: scores.get(r.sensor) ?? null }
}

/** A node's storage and delivery in a posted epoch; undefined when no verifier counted either. */
function storageEpoch(a: EpochAudit, peerId: string): NodeStorageEpochView | undefined {
  const st = a.settlement.rewards.storage.find((x) => x.peerId === peerId)
  const bw = a.settlement.rewards.bandwidth.find((x) => x.peerId === peerId)
  if (st === undefined && bw === undefined) return undefined
  const byVerifier = new Map<string, NodeStorageEpochView['verifiers'][number]>()
  const entry = (verifier: string) => {
    let v = byVerifier.get(verifier)
    if (v === undefined) {
      v = { verifier, challenges: 0, passed: 0, provenBytes: 0, servedBytes: 0, downloaders: 0 }
      byVerifier.set(verifier, v)
    }
    return v
  }
  for (const v of st?.verifiers ?? [])
    Object.assign(entry(v.verifier), { challenges: v.challenges, passed: v.passed, provenBytes: v.bytes })
  for (const v of bw?.verifiers ?? [])
    Object.assign(entry(v.verifier), { servedBytes: v.bytes, downloaders: v.downloaders })
  const verifiers = [...byVerifier.values()]
  const challenges = verifiers.reduce((sum, v) => sum + v.challenges, 0)
  const passed = verifiers.reduce((sum, v) => sum + v.passed, 0)
  return {
    epoch: a.epoch,
    challenges,
    passed,
    failed: challenges - passed,
    provenBytes: st?.bytes ?? 0,
    servedBytes: bw?.bytes ?? 0,
    downloaders: Math.max(0, ...verifiers.map((v) => v.downloaders)),
    storageReward: (st?.reward ?? 0n).toString(),
    bandwidthReward: (bw?.reward ?? 0n).toString(),
    verifiers,
  }
}

/** A node's storage at a glance: the shards it holds now, and the newest posted epoch's counts. */
function storageSummary(
  held: readonly { bytes: number }[],
  latest: EpochAudit | undefined,
  peerId: string,
): NodeStorageSummary {
  const e = latest === undefined ? undefined : storageEpoch(latest, peerId)
  return {
    shards: held.length,
    bytes: held.reduce((sum, h) => sum + h.bytes, 0),
    challenges: e?.challenges ?? 0,
    passed: e?.passed ?? 0,
    servedBytes: e?.servedBytes ?? 0,
  }
}

/** Every governable value of `values`, in the order `meshwork gov params` shows them. */
function valueViews(values: GovernableValues): GovernableValueView[] {
  return GOVERNABLE_KEYS.filter((k) => values[k.key] !== undefined).map((k) => {
    const value = values[k.key] as bigint
    return {
      key: k.key,
      unit: k.unit,
      value: value.toString(),
      display: formatGovernable(k.key, value),
      description: k.description,
    }
  })
}

function changeView(key: string, from: bigint | undefined, to: bigint): ParamChangeView {
  return {
    key,
    from: from === undefined ? null : from.toString(),
    to: to.toString(),
    fromDisplay: from === undefined ? null : formatGovernable(key, from),
    toDisplay: formatGovernable(key, to),
  }
}
