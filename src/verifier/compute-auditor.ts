import { createHash } from 'node:crypto'
import type { Hex } from 'viem'
import { nodeIdOf } from '../chain/actions/register-node.js'
import type { SignedBy } from '../chain/typed-data.js'
import {
  type CheckedEvidence,
  checkEvidence,
  checkReceipt,
  computeTopic,
  FRAUD_EVIDENCE,
  type FraudEvidenceBody,
  SLASH_SIGNATURE,
  type SlashSignatureBody,
  WORK_RECEIPT,
  type WorkReceiptBody,
} from '../compute/receipts.js'
import type { Logger } from '../core/logger.js'
import type { GossipMessage, NetworkPort, Verdict } from '../mesh/network-port.js'
import { type PeerVerifier, peerIdBytes } from '../mesh/peer-key.js'
import type { SignedEnvelope, WireCodec } from '../mesh/wire-codec.js'
import type { NodeSlasher, RegistrySnapshot } from './chain-port.js'
import type { VerifierStore } from './store.js'

/**
 * A verifier's part in the compute market (docs/protocol.md, "Work receipts and fraud evidence"):
 *
 * - takes in builders' work receipts, checks every node signature in them and counts each node's
 *   verified jobs and their value for the epoch (once per node and job, in SQLite); the challenger
 *   publishes them as compute observations at the epoch's end;
 * - takes in fraud evidence, re-runs the job in its own sandbox, and when its output differs from
 *   what the node signed, records the fraud (a zero compute score this epoch), signs a `SlashNode`
 *   message and gossips the signature; once a quorum of active verifiers' signatures is in, it
 *   submits the slash (the contract slashes each evidence once).
 */

/** Options of {@link ComputeAuditor}. */
export interface ComputeAuditorInit {
  network: string
  /** What a confirmed fraud slashes (base units; the contract takes at most the node's stake). */
  slashAmount: bigint
}

/** The parts a compute auditor works with. */
export interface ComputeAuditorComponents {
  port: Pick<NetworkPort, 'peerId' | 'publish' | 'subscribe'>
  /** Knows WORK_RECEIPT, FRAUD_EVIDENCE and SLASH_SIGNATURE; encodes with the verifier's peer key. */
  codec: WireCodec
  store: VerifierStore
  verifier: PeerVerifier
  logger: Logger
  /**
   * The epoch a message's timestamp (the sender's signed `ts`, ms) falls in: every verifier puts a
   * receipt or evidence in the same epoch, however long it took to check. And the epoch it is now.
   */
  epochAt(ms: number): number
  /** The epoch it is now (chain time), and the registry that epoch was planned with. */
  epochNow(): number
  registry(epoch: number): RegistrySnapshot | undefined
  /** Runs a job in this verifier's sandbox: its output, or undefined when the job fails here. */
  rerun(evidence: CheckedEvidence): Promise<Uint8Array | undefined>
  /** Without one, frauds are recorded (zero compute score) but not slashed. */
  slasher?: NodeSlasher
}

/** See the module comment. */
export class ComputeAuditor {
  readonly #init: ComputeAuditorInit
  readonly #c: ComputeAuditorComponents
  readonly #checking = new Set<string>()
  readonly #running = new Set<Promise<unknown>>()
  #unsubscribe: (() => void) | undefined
  #stopped = false
  /** Messages by outcome, for metrics and tests. */
  readonly counts = {
    receipts: 0,
    receiptsRefused: 0,
    evidence: 0,
    evidenceRefused: 0,
    frauds: 0,
    slashSignatures: 0,
    slashes: 0,
  }

  constructor(init: ComputeAuditorInit, components: ComputeAuditorComponents) {
    this.#init = init
    this.#c = components
  }

  start(): void {
    this.#unsubscribe = this.#c.port.subscribe(computeTopic(this.#init.network), (m) => this.#onMessage(m))
  }

  async stop(): Promise<void> {
    this.#stopped = true
    this.#unsubscribe?.()
    await Promise.allSettled([...this.#running])
  }

  /** Resolves once every re-run and slash started so far is done (tests). */
  async settled(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running])
  }

  #track(p: Promise<unknown>): void {
    this.#running.add(p)
    void p.finally(() => this.#running.delete(p))
  }

  #onMessage(message: GossipMessage): Verdict {
    const decoded = this.#c.codec.decode(message.data, { from: message.from })
    if (!decoded.ok) return decoded.verdict
    const e = decoded.envelope
    if (e.type === WORK_RECEIPT.type) return this.#onReceipt(e as SignedEnvelope<WorkReceiptBody>)
    if (e.type === FRAUD_EVIDENCE.type) return this.#onEvidence(e as SignedEnvelope<FraudEvidenceBody>)
    if (e.type === SLASH_SIGNATURE.type) {
      this.#track(this.#onSlashSignature(e as SignedEnvelope<SlashSignatureBody>))
      return 'accept'
    }
    return 'reject'
  }

  #onReceipt(envelope: SignedEnvelope<WorkReceiptBody>): Verdict {
    const epoch = this.#c.epochAt(envelope.ts)
    const registry = this.#c.registry(epoch)
    if (registry === undefined) return 'ignore'
    const checked = checkReceipt(envelope, { network: this.#init.network, verifier: this.#c.verifier })
    if (!checked.ok) {
      this.counts.receiptsRefused++
      this.#c.logger.debug({ from: envelope.from, reason: checked.reason }, 'work receipt refused')
      return 'reject'
    }
    // Registered nodes only, and at least two operators: one operator's nodes cannot vouch for each other.
    const operators = new Map(registry.nodes.map((n) => [n.peerId, n.operator.toLowerCase()]))
    const runs = checked.runs.filter((r) => operators.has(r.node))
    if (new Set(runs.map((r) => operators.get(r.node))).size < 2) {
      this.counts.receiptsRefused++
      return 'ignore'
    }
    for (const run of runs)
      this.#c.store.recordWork({ epoch, node: run.node, jobId: envelope.body.jobId, value: run.price })
    this.counts.receipts++
    return 'accept'
  }

  #onEvidence(envelope: SignedEnvelope<FraudEvidenceBody>): Verdict {
    const checked = checkEvidence(envelope, { network: this.#init.network, verifier: this.#c.verifier })
    if (!checked.ok) {
      this.counts.evidenceRefused++
      this.#c.logger.debug({ from: envelope.from, reason: checked.reason }, 'fraud evidence refused')
      return 'reject'
    }
    const hash = checked.evidence.evidenceHash
    if (this.#checking.has(hash) || this.#c.store.fraud(hash) !== undefined) return 'ignore'
    this.#checking.add(hash)
    this.counts.evidence++
    this.#track(
      this.#confirm(checked.evidence, this.#c.epochAt(envelope.ts))
        .catch((err: unknown) =>
          this.#c.logger.warn({ err, evidence: hash }, 'could not check fraud evidence'),
        )
        .finally(() => this.#checking.delete(hash)),
    )
    // Forwarded at once: every verifier re-runs it for itself.
    return 'accept'
  }

  /** Re-runs the job; on a different output, records the fraud and signs its slash. */
  async #confirm(evidence: CheckedEvidence, epoch: number): Promise<void> {
    const { logger, store } = this.#c
    const output = await this.#c.rerun(evidence)
    if (output === undefined || this.#stopped) return
    const ours = createHash('sha256').update(output).digest('hex')
    if (ours === evidence.outputHash) {
      logger.info(
        { node: evidence.node, job: evidence.spec.id },
        'fraud evidence did not hold: same output here',
      )
      return
    }
    if (
      !store.recordFraud({
        evidenceHash: evidence.evidenceHash,
        epoch,
        node: evidence.node,
        jobId: evidence.spec.id,
      })
    )
      return
    this.counts.frauds++
    logger.warn(
      { node: evidence.node, job: evidence.spec.id, epoch },
      'fraud confirmed by re-running the job',
    )
    const slasher = this.#c.slasher
    const registry = this.#c.registry(epoch)
    if (
      !slasher ||
      !registry?.verifiers.some((v) => v.address.toLowerCase() === slasher.address.toLowerCase())
    )
      return
    const message = this.#message(evidence.node, evidence.evidenceHash)
    const signature = await slasher.sign(message)
    store.saveSlashSignature({ evidenceHash: evidence.evidenceHash, signer: slasher.address, signature })
    const { bytes } = this.#c.codec.encode(SLASH_SIGNATURE, {
      evidenceHash: message.evidenceHash,
      nodeId: message.nodeId,
      amount: message.amount.toString(),
      signature,
    })
    await this.#c.port.publish(computeTopic(this.#init.network), bytes).catch((err: unknown) => {
      logger.warn({ err }, 'could not gossip a slash signature')
    })
    await this.#maybeSlash(evidence.evidenceHash)
  }

  #message(node: string, evidenceHash: Hex) {
    return { nodeId: nodeIdOf(peerIdBytes(node)), amount: this.#init.slashAmount, evidenceHash }
  }

  async #onSlashSignature(envelope: SignedEnvelope<SlashSignatureBody>): Promise<void> {
    const slasher = this.#c.slasher
    if (!slasher) return
    const b = envelope.body
    const message = {
      nodeId: b.nodeId as Hex,
      amount: BigInt(b.amount),
      evidenceHash: b.evidenceHash as Hex,
    }
    // Only the amount this verifier would sign: anything else could never reach a quorum with it.
    if (message.amount !== this.#init.slashAmount) return
    const signer = (await slasher.recover(message, b.signature as Hex).catch(() => undefined))?.toLowerCase()
    const registry = this.#c.registry(this.#c.epochNow())
    if (!signer || !registry?.verifiers.some((v) => v.address.toLowerCase() === signer)) return
    this.#c.store.saveSlashSignature({ evidenceHash: b.evidenceHash, signer, signature: b.signature as Hex })
    this.counts.slashSignatures++
    await this.#maybeSlash(b.evidenceHash as Hex)
  }

  /** Submits the slash of confirmed evidence once a quorum signed it (unless it is on-chain already). */
  async #maybeSlash(evidenceHash: Hex): Promise<void> {
    const slasher = this.#c.slasher
    const fraud = this.#c.store.fraud(evidenceHash)
    if (!slasher || fraud === undefined || fraud.slashedTx !== null || this.#stopped) return
    const message = this.#message(fraud.node, evidenceHash)
    const signatures: SignedBy[] = this.#c.store.slashSignatures(evidenceHash)
    if (signatures.length < (await slasher.quorum())) return
    if (await slasher.used(evidenceHash)) {
      this.#c.store.markSlashed(evidenceHash, 'by another verifier')
      return
    }
    try {
      const tx = await slasher.slash(message, signatures)
      this.#c.store.markSlashed(evidenceHash, tx)
      this.counts.slashes++
      this.#c.logger.warn({ node: fraud.node, evidenceHash, tx }, 'node slashed for a wrong result')
    } catch (err) {
      // Another verifier's transaction may have landed first.
      if (await slasher.used(evidenceHash).catch(() => false))
        this.#c.store.markSlashed(evidenceHash, 'by another verifier')
      else
        this.#c.logger.warn(
          { err, evidenceHash },
          'could not submit a slash; retried with the next signature',
        )
    }
  }
}
