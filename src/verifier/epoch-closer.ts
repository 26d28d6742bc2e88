import type { Clock } from '../core/clock.js'
import type { Logger } from '../core/logger.js'
import type { NetworkPort } from '../mesh/network-port.js'
import type { PeerVerifier } from '../mesh/peer-key.js'
import type { WireCodec } from '../mesh/wire-codec.js'
import { type EmissionSchedule, emissionOf, rebateCapOf } from '../rewards/index.js'
import {
  type BundleParts,
  buildBundle,
  bundleCid,
  type CheckedBundle,
  checkBundle,
  type EpochBundle,
  type Settlement,
  settleBundle,
} from './bundle.js'
import type { RegistrySnapshot, RootPoster, VerifierChain } from './chain-port.js'
import { attemptAt, EPOCH_ATTESTATION, EPOCH_PROPOSAL, leaderOf } from './leader.js'
import type { VerifierStore } from './store.js'
import { BUNDLE_PROTOCOL, MAX_BUNDLE_BYTES, type PlannedEpoch } from './verifier-agent.js'

/** The gossip topic of proposals and attestations. */
export function epochTopic(network: string): string {
  return `meshwork/${network}/epochs/1`
}

/** Options of {@link EpochCloser}. */
export interface EpochCloserInit {
  network: string
  /** Unix seconds and seconds, as the contracts hold them. */
  schedule: { genesisTime: number; epochDuration: number }
  emission: EmissionSchedule
  /** After an epoch ends, how long the leader waits for late observations before building. */
  graceMs: number
  /** How long a leader has to get its root posted before the next one takes over. */
  leaderTimeoutMs: number
  /** How often the closer looks at the chain (default 1 s). */
  tickMs?: number
}

/** The parts the closer works with. */
export interface EpochCloserComponents {
  port: NetworkPort
  clock: Clock
  /** The chain: epochs, registry, posted roots, and each epoch's reward parameter set (`paramsAt`). */
  chain: VerifierChain
  poster: RootPoster
  store: VerifierStore
  /** Encodes with the verifier's peer key; knows EPOCH_PROPOSAL and EPOCH_ATTESTATION. */
  codec: WireCodec
  verifier: PeerVerifier
  logger: Logger
  /** The agent's plan of an epoch (seed block and registry), once it has one. */
  plan(epoch: number): PlannedEpoch | undefined
}

type Proposal = (typeof EPOCH_PROPOSAL.schema)['_output']
type Attestation = (typeof EPOCH_ATTESTATION.schema)['_output']

/**
 * Closes epochs: the leader builds the bundle from every observation it holds and the epoch's
 * parameter set as the chain holds it, settles it and proposes the root; every verifier fetches the
 * bundle by CID, checks it (signatures, its own observations included, the carried table against the
 * previous root, the parameter set and version equal to the chain's for that epoch), settles it and
 * signs `PostRoot` only if it gets the same root; whoever holds a quorum of signatures posts. The chain
 * decides: a root is posted once (a late post reverts and is dropped), and a verifier that did not
 * attest to a root never helps it.
 */
export class EpochCloser {
  readonly #init: EpochCloserInit
  readonly #c: EpochCloserComponents
  /** Bundles this verifier checked and settled, by CID (the newest few). */
  readonly #settled = new Map<string, { epoch: number; digest: `0x${string}`; settlement: Settlement }>()
  readonly #proposed = new Set<string>()
  /** `epoch/attempt` pairs this verifier has checked a proposal of (at most one each). */
  readonly #attested = new Set<string>()
  readonly #closers = new Map<number, RegistrySnapshot['verifiers']>()
  readonly #stop = new AbortController()
  #loop: Promise<void> | undefined
  #unsubscribe: (() => void) | undefined
  /**
   * Proposals refused, by reason (tests, metrics and `/status`): `not_leader`, `attempt_out_of_time`,
   * a bundle fault of `checkBundle` (`params_mismatch` when the bundle's parameters are not the
   * chain's for its epoch), `cid_mismatch`, `wrong_epoch`, `own_observations_missing`,
   * `root_mismatch`.
   */
  readonly refused = new Map<string, number>()

  constructor(init: EpochCloserInit, components: EpochCloserComponents) {
    this.#init = init
    this.#c = components
  }

  start(): void {
    this.#unsubscribe = this.#c.port.subscribe(epochTopic(this.#init.network), (message) => {
      const decoded = this.#c.codec.decode(message.data, { from: message.from })
      if (!decoded.ok) return decoded.verdict
      const { type, body, from } = decoded.envelope
      if (type === EPOCH_PROPOSAL.type) void this.#onProposal(from, body as Proposal)
      else if (type === EPOCH_ATTESTATION.type) void this.#onAttestation(body as Attestation)
      return 'accept'
    })
    this.#loop = this.#run(this.#stop.signal).catch((err: unknown) => {
      if (!this.#stop.signal.aborted) this.#c.logger.error({ err }, 'the epoch closer stopped')
    })
  }

  async stop(): Promise<void> {
    this.#stop.abort()
    this.#unsubscribe?.()
    await this.#loop
  }

  #endMs(epoch: number): number {
    const { genesisTime, epochDuration } = this.#init.schedule
    return (genesisTime + (epoch + 1) * epochDuration) * 1000
  }

  /**
   * Who closes `epoch`: the verifiers active at the first block at or after its end; if there were
   * none then (a network starting up), at the next epoch boundary that had some. Everyone computes
   * the same set from the chain. (Whose observations count is the registry at the epoch's seed
   * block, in the bundle; an epoch that had no verifiers gets an empty bundle and can still be
   * closed, so that the epochs after it can.) Undefined until such a block exists.
   */
  async #closersOf(epoch: number): Promise<RegistrySnapshot['verifiers'] | undefined> {
    const cached = this.#closers.get(epoch)
    if (cached !== undefined) return cached
    const { chain } = this.#c
    for (let boundary = epoch; ; boundary++) {
      const block = await chain.firstBlockAtOrAfter(this.#endMs(boundary) / 1000)
      if (block === undefined) return undefined
      const closers = (await chain.registry(block.number)).verifiers
      if (closers.length > 0) {
        this.#closers.set(epoch, closers)
        for (const old of this.#closers.keys()) if (old < epoch - 8) this.#closers.delete(old)
        return closers
      }
    }
  }

  readonly #plans = new Map<number, PlannedEpoch>()

  /**
   * The plan of `epoch` (seed block and registry): the agent's, or read from the chain for an
   * epoch the agent did not run (it began before this verifier started).
   */
  async #planOf(epoch: number): Promise<PlannedEpoch | undefined> {
    const known = this.#c.plan(epoch) ?? this.#plans.get(epoch)
    if (known !== undefined) return known
    const { genesisTime, epochDuration } = this.#init.schedule
    const seed = await this.#c.chain.firstBlockAtOrAfter(genesisTime + epoch * epochDuration)
    if (seed === undefined) return undefined
    const plan = {
      epoch,
      seed: seed.hash,
      seedBlock: seed.number,
      registry: await this.#c.chain.registry(seed.number),
    }
    this.#plans.set(epoch, plan)
    for (const old of this.#plans.keys()) if (old < epoch - 8) this.#plans.delete(old)
    return plan
  }

  /**
   * Payment fees burned in `plan`'s epoch, per provider: from its seed block to the block before the
   * next epoch's (which exists once the epoch has closers).
   *
   * @throws Error while the next epoch's first block does not exist yet.
   */
  async #burnsOf(plan: PlannedEpoch): Promise<Map<string, bigint>> {
    const next = await this.#c.chain.firstBlockAtOrAfter(this.#endMs(plan.epoch) / 1000)
    if (next === undefined) throw new Error(`epoch ${plan.epoch} has no block after its end yet`)
    return this.#c.chain.paymentFees(BigInt(plan.seedBlock), next.number - 1n)
  }

  /** The nodes of `plan`'s registry as a bundle lists them (registration epoch, cell). */
  #bundleNodes(plan: PlannedEpoch): BundleParts['nodes'] {
    const { genesisTime, epochDuration } = this.#init.schedule
    return plan.registry.nodes.map((n) => ({
      peerId: n.peerId,
      operator: n.operator,
      stake: n.stake,
      registeredEpoch: Math.max(0, Math.floor((n.registeredAt - genesisTime) / epochDuration)),
      ...(n.h3Cell === undefined ? {} : { cell: n.h3Cell }),
    }))
  }

  async #run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.#tick()
      } catch (err) {
        this.#c.logger.warn({ err }, 'epoch closer step failed; retrying')
      }
      await this.#c.clock.sleep(this.#init.tickMs ?? 1_000, signal)
    }
  }

  /** One look at the chain: propose if leading, post if a quorum is held. */
  async #tick(): Promise<void> {
    const { chain, poster } = this.#c
    const posted = await chain.postedRoots()
    this.#remember(posted)
    const epoch = posted.size === 0 ? 0 : Math.max(...posted.keys()) + 1
    const head = await chain.head()
    if (head.timestamp * 1000 < this.#endMs(epoch)) return
    const plan = await this.#planOf(epoch)
    if (plan === undefined) return
    const openedAt = this.#endMs(epoch) + this.#init.graceMs
    // Chain time throughout (the head block's), so that every verifier agrees on the attempt.
    const chainNow = head.timestamp * 1000
    if (chainNow < openedAt) return
    const closers = await this.#closersOf(epoch)
    if (closers === undefined || closers.length === 0) return
    const attempt = attemptAt(chainNow, openedAt, this.#init.leaderTimeoutMs)
    const leader = leaderOf(
      closers.map((v) => v.address),
      epoch,
      attempt,
    )
    if (leader === poster.address.toLowerCase() && !this.#proposed.has(`${epoch}/${attempt}`)) {
      this.#proposed.add(`${epoch}/${attempt}`)
      // Built afresh from every observation held now (late ones included); the same observations
      // give the same bundle, CID and signature as before.
      await this.#propose(plan, attempt, posted.get(epoch - 1)?.root ?? null)
    }
    await this.#postIfQuorum(epoch)
  }

  /** Keeps the chain's posted roots in the store (the verifier's view of how far the chain is). */
  #remember(posted: Awaited<ReturnType<VerifierChain['postedRoots']>>): void {
    const { store } = this.#c
    const latest = store.latestRoot()
    // A revoked root (and every root after it) is forgotten; posted ones are added.
    if (latest !== undefined && posted.get(latest.epoch)?.root !== latest.root)
      store.forgetRootsFrom(latest.epoch)
    const from = (store.latestRoot()?.epoch ?? -1) + 1
    for (const [epoch, r] of posted) {
      if (epoch < from) continue
      store.recordRoot({
        epoch,
        root: r.root,
        totalCumulative: r.totalCumulative,
        digest: r.digest,
        block: Number(r.block),
      })
    }
  }

  /** Builds, stores, settles and proposes the bundle of `plan.epoch`; attests to it too. */
  async #propose(plan: PlannedEpoch, attempt: number, previousRoot: string | null): Promise<void> {
    const { store, port, codec, chain } = this.#c
    const carried = await this.#carried(plan.epoch)
    // The set in force in this epoch (never "the current one": a change executed during it applies
    // from the next), as every other verifier reads it.
    const params = await chain.paramsAt(plan.epoch)
    const burns = rebateCapOf(params) === undefined ? undefined : await this.#burnsOf(plan)
    const encoded = buildBundle({
      net: this.#init.network,
      epoch: plan.epoch,
      seed: plan.seed,
      emission: emissionOf(this.#init.emission, BigInt(plan.epoch)),
      params,
      nodes: this.#bundleNodes(plan),
      ...(burns === undefined ? {} : { burns }),
      verifiers: plan.registry.verifiers.map((v) => ({ peerId: v.peerId, address: v.address })),
      observations: [
        ...store.observations(plan.epoch),
        ...store.computeObservations(plan.epoch),
        ...store.storageObservations(plan.epoch),
        ...store.bandwidthObservations(plan.epoch),
        ...store.sensorObservations(plan.epoch),
      ],
      carried: { root: previousRoot, entries: carried },
    })
    const checked = checkBundle(encoded.bytes, {
      network: this.#init.network,
      verifier: this.#c.verifier,
      previousRoot,
      params,
    })
    if (!checked.ok) throw new Error(`own bundle refused: ${checked.fault} ${checked.detail ?? ''}`)
    const settlement = this.#settle(checked.bundle)
    store.saveBundle({
      ...encoded,
      epoch: plan.epoch,
      root: settlement.root,
      totalCumulative: settlement.totalCumulative,
    })
    const proposal: Proposal = {
      epoch: plan.epoch,
      attempt,
      cid: encoded.cid,
      root: settlement.root,
      bundleDigest: encoded.digest,
      totalCumulative: settlement.totalCumulative.toString(),
    }
    this.#c.logger.info(
      { epoch: plan.epoch, attempt, cid: encoded.cid, root: settlement.root },
      'proposing a root',
    )
    await port.publish(epochTopic(this.#init.network), codec.encode(EPOCH_PROPOSAL, proposal).bytes)
    await this.#attest(proposal)
  }

  /** The cumulative table after `epoch - 1`: from the bundle its posted root commits to. */
  async #carried(epoch: number) {
    if (epoch === 0) return []
    const posted = (await this.#c.chain.postedRoots()).get(epoch - 1)
    if (posted === undefined) throw new Error(`epoch ${epoch - 1} has no posted root`)
    const cid = bundleCid(posted.digest)
    const cached = this.#settled.get(cid)
    if (cached !== undefined) return cached.settlement.entries
    const bytes = this.#c.store.bundle(cid)?.bytes ?? (await this.#fetch(cid, undefined, epoch - 1))
    const before = (await this.#c.chain.postedRoots()).get(epoch - 2)?.root ?? null
    const checked = checkBundle(bytes, {
      network: this.#init.network,
      verifier: this.#c.verifier,
      previousRoot: before,
    })
    if (!checked.ok) throw new Error(`the bundle of epoch ${epoch - 1} does not check: ${checked.fault}`)
    const settlement = this.#settle(checked.bundle)
    if (settlement.root !== posted.root)
      throw new Error(`the bundle of epoch ${epoch - 1} does not settle to its root`)
    return settlement.entries
  }

  #settle(bundle: CheckedBundle): Settlement {
    let held = this.#settled.get(bundle.cid)
    if (held === undefined) {
      held = { epoch: bundle.bundle.epoch, digest: bundle.digest, settlement: settleBundle(bundle) }
      this.#settled.set(bundle.cid, held)
      if (this.#settled.size > 4) this.#settled.delete(this.#settled.keys().next().value as string)
    }
    return held.settlement
  }

  /** Fetches a bundle by CID from `from`, or from any verifier of `epoch`. */
  async #fetch(cid: string, from: string | undefined, epoch: number): Promise<Uint8Array> {
    const peers =
      from !== undefined
        ? [from]
        : ((await this.#planOf(epoch))?.registry.verifiers.map((v) => v.peerId) ?? [])
    for (const peer of peers) {
      if (peer === this.#c.port.peerId) continue
      try {
        return await this.#c.port.request(peer, BUNDLE_PROTOCOL, new TextEncoder().encode(cid), {
          maxResponseBytes: MAX_BUNDLE_BYTES,
          timeoutMs: 30_000,
        })
      } catch (err) {
        this.#c.logger.debug({ err, cid, peer }, 'could not fetch a bundle')
      }
    }
    throw new Error(`no verifier served bundle ${cid}`)
  }

  #refuse(reason: string, detail: Record<string, unknown>): void {
    this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1)
    this.#c.logger.warn({ reason, ...detail }, 'refusing a proposal')
  }

  /** Checks a proposal from its leader and attests to it if the bundle settles to the same root. */
  async #onProposal(from: string, p: Proposal): Promise<void> {
    try {
      if (this.#attested.has(`${p.epoch}/${p.attempt}`)) return
      const closers = await this.#closersOf(p.epoch)
      if (closers === undefined || closers.length === 0) return
      const leader = leaderOf(
        closers.map((v) => v.address),
        p.epoch,
        p.attempt,
      )
      const leaderPeer = closers.find((v) => v.address.toLowerCase() === leader)?.peerId
      if (leaderPeer !== from) return this.#refuse('not_leader', { epoch: p.epoch, from })
      const posted = await this.#c.chain.postedRoots()
      if (posted.has(p.epoch)) return
      // Only the attempt in force (or the one before or after, for gossip and block delays): a
      // verifier checks one proposal per attempt, so nobody can make it fetch bundles at will.
      const head = await this.#c.chain.head()
      const now = attemptAt(
        head.timestamp * 1000,
        this.#endMs(p.epoch) + this.#init.graceMs,
        this.#init.leaderTimeoutMs,
      )
      if (Math.abs(p.attempt - now) > 1)
        return this.#refuse('attempt_out_of_time', { epoch: p.epoch, attempt: p.attempt, now })
      if (this.#attested.has(`${p.epoch}/${p.attempt}`)) return
      this.#attested.add(`${p.epoch}/${p.attempt}`)
      const previousRoot = posted.get(p.epoch - 1)?.root ?? null
      const bytes = this.#c.store.bundle(p.cid)?.bytes ?? (await this.#fetch(p.cid, from, p.epoch))
      // The leader cannot pick its own parameters: the bundle must carry the chain's set for the epoch.
      const params = await this.#c.chain.paramsAt(p.epoch)
      const checked = checkBundle(bytes, {
        network: this.#init.network,
        verifier: this.#c.verifier,
        previousRoot,
        params,
      })
      if (!checked.ok)
        return this.#refuse(checked.fault, {
          epoch: p.epoch,
          cid: p.cid,
          ...(checked.detail === undefined ? {} : { detail: checked.detail }),
        })
      if (checked.bundle.cid !== p.cid || checked.bundle.digest !== p.bundleDigest)
        return this.#refuse('cid_mismatch', { epoch: p.epoch })
      if (checked.bundle.bundle.epoch !== p.epoch) return this.#refuse('wrong_epoch', { epoch: p.epoch })
      // The leader cannot edit the registry either: nodes, stakes, operators and cells as the chain has them.
      const plan = await this.#planOf(p.epoch)
      if (plan === undefined) return this.#refuse('no_plan', { epoch: p.epoch })
      const different = nodesDifference(checked.bundle.bundle.nodes, this.#bundleNodes(plan))
      if (different !== undefined)
        return this.#refuse('nodes_mismatch', { epoch: p.epoch, detail: different })
      // And the payment fees burned in the epoch, which cap paid work's rewards, as the chain has them.
      if (rebateCapOf(params) !== undefined) {
        const burns = await this.#burnsOf(plan)
        const listed = checked.bundle.bundle.burns ?? []
        const same =
          listed.length === [...burns.values()].filter((v) => v > 0n).length &&
          listed.every(([operator, amount]) => burns.get(operator)?.toString() === amount)
        if (!same) return this.#refuse('burns_mismatch', { epoch: p.epoch })
      }
      // Every observation this verifier published for the epoch must be in, exactly.
      const inBundle = new Set(checked.bundle.bundle.observations.map((o) => (o as { sig: string }).sig))
      const mine = [
        ...this.#c.store.observations(p.epoch),
        ...this.#c.store.computeObservations(p.epoch),
        ...this.#c.store.storageObservations(p.epoch),
        ...this.#c.store.bandwidthObservations(p.epoch),
        ...this.#c.store.sensorObservations(p.epoch),
      ].filter((o) => o.from === this.#c.port.peerId)
      const missing = mine.filter((o) => !inBundle.has(o.sig))
      if (missing.length > 0)
        return this.#refuse('own_observations_missing', { epoch: p.epoch, missing: missing.length })
      const settlement = this.#settle(checked.bundle)
      if (settlement.root !== p.root || settlement.totalCumulative.toString() !== p.totalCumulative)
        return this.#refuse('root_mismatch', { epoch: p.epoch, ours: settlement.root, theirs: p.root })
      this.#c.store.saveBundle({
        cid: p.cid,
        epoch: p.epoch,
        digest: checked.bundle.digest,
        root: settlement.root,
        totalCumulative: settlement.totalCumulative,
        bytes,
      })
      await this.#attest(p)
    } catch (err) {
      this.#c.logger.warn({ err, epoch: p.epoch }, 'could not check a proposal')
    }
  }

  /**
   * Signs PostRoot for a proposal this verifier settled to the same root, stores and gossips it. A
   * bundle is signed once, across restarts (the signature is stored before it is gossiped, and a
   * kill in between is healed by gossiping the stored one again); a later attempt's different bundle
   * may be signed too, so that verifiers whose first signatures split between bundles still reach a
   * quorum. Every root signed is one this verifier recomputed, and the chain posts one per epoch.
   */
  async #attest(p: Proposal): Promise<void> {
    const { poster, store, port, codec } = this.#c
    const signer = poster.address.toLowerCase() as `0x${string}`
    const { attempt: _attempt, ...proposed } = p
    const { revocations } = await poster.state()
    const message = {
      epoch: BigInt(p.epoch),
      root: p.root as `0x${string}`,
      bundleDigest: p.bundleDigest as `0x${string}`,
      totalCumulative: BigInt(p.totalCumulative),
      revocations,
    }
    // The stored signature counts only while no root was revoked since (the message names the count).
    const before = store.attestations(p.epoch, p.cid).find((a) => a.signer === signer)?.signature
    let signature = before
    if (before === undefined || (await poster.recover(message, before)).toLowerCase() !== signer) {
      signature = await poster.sign(message)
      store.saveAttestation({ epoch: p.epoch, cid: p.cid, signer, signature })
      this.#c.logger.info({ epoch: p.epoch, attempt: p.attempt, cid: p.cid }, 'attested to a root')
    }
    const attestation: Attestation = {
      ...proposed,
      revocations,
      signer,
      signature: signature as `0x${string}`,
    }
    await port.publish(epochTopic(this.#init.network), codec.encode(EPOCH_ATTESTATION, attestation).bytes)
    await this.#postIfQuorum(p.epoch)
  }

  /** Keeps an attestation whose signature is by the active verifier it names. */
  async #onAttestation(a: Attestation): Promise<void> {
    try {
      const closers = await this.#closersOf(a.epoch)
      if (closers === undefined || !closers.some((v) => v.address.toLowerCase() === a.signer)) return
      const message = {
        epoch: BigInt(a.epoch),
        root: a.root as `0x${string}`,
        bundleDigest: a.bundleDigest as `0x${string}`,
        totalCumulative: BigInt(a.totalCumulative),
        revocations: a.revocations,
      }
      const recovered = await this.#c.poster.recover(message, a.signature as `0x${string}`)
      if (recovered.toLowerCase() !== a.signer) return
      this.#c.store.saveAttestation({
        epoch: a.epoch,
        cid: a.cid,
        signer: a.signer as `0x${string}`,
        signature: a.signature as `0x${string}`,
      })
      await this.#postIfQuorum(a.epoch)
    } catch (err) {
      this.#c.logger.warn({ err, epoch: a.epoch }, 'could not take an attestation')
    }
  }

  /** Posts `epoch`'s root when a quorum attested to a bundle this verifier holds and checked. */
  async #postIfQuorum(epoch: number): Promise<void> {
    const { store, poster, chain, logger } = this.#c
    // From the settled cache: no bundle bytes are read from the store on this path (it runs every tick).
    const bundles = [...this.#settled.entries()].filter(([, held]) => held.epoch === epoch)
    for (const [cid, { digest, settlement }] of bundles) {
      const { quorum, nextEpoch, revocations } = await poster.state()
      if (nextEpoch !== epoch || store.attestations(epoch, cid).length < quorum) continue
      if ((await chain.postedRoots()).has(epoch)) return
      // Only signatures of exactly the message to post count (a verifier may have signed another
      // root for the same bundle, or before a revoke).
      const message = {
        epoch: BigInt(epoch),
        root: settlement.root,
        bundleDigest: digest,
        totalCumulative: settlement.totalCumulative,
        revocations,
      }
      const attestations = []
      for (const a of store.attestations(epoch, cid)) {
        if ((await poster.recover(message, a.signature)).toLowerCase() === a.signer) attestations.push(a)
      }
      if (attestations.length < quorum) continue
      try {
        await poster.post(
          {
            epoch: BigInt(epoch),
            root: settlement.root,
            bundleDigest: digest,
            totalCumulative: settlement.totalCumulative,
          },
          attestations,
        )
        logger.info({ epoch, root: settlement.root, signers: attestations.length }, 'posted a root')
      } catch (err) {
        // Another verifier posted first, or the previous root is still in its dispute window: the
        // next tick looks again.
        logger.info({ err: (err as { code?: string }).code ?? err, epoch }, 'root not posted now')
      }
      return
    }
  }
}

/**
 * The first difference between a bundle's node list and the registry's (as `BundleParts['nodes']`):
 * a node missing or added, or another operator, stake, registration epoch or cell; undefined when
 * they are the same.
 */
export function nodesDifference(
  listed: EpochBundle['nodes'],
  registry: BundleParts['nodes'],
): string | undefined {
  const byPeer = new Map(listed.map((n) => [n.peerId, n]))
  if (listed.length !== registry.length) return `${listed.length} nodes, the registry's ${registry.length}`
  for (const n of registry) {
    const held = byPeer.get(n.peerId)
    if (held === undefined) return `${n.peerId} is missing`
    if (held.operator !== n.operator.toLowerCase()) return `${n.peerId}: another operator`
    if (held.stake !== n.stake.toString())
      return `${n.peerId}: stake ${held.stake}, the registry's ${n.stake}`
    if (held.registeredEpoch !== n.registeredEpoch) return `${n.peerId}: another registration epoch`
    if (held.cell !== n.cell?.toLowerCase()) return `${n.peerId}: cell ${held.cell}, the registry's ${n.cell}`
  }
  return undefined
}
