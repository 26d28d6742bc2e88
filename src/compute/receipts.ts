import { createHash } from 'node:crypto'
import { keccak256, toBytes } from 'viem'
import { z } from 'zod'
import { canonicalJson } from '../core/canonical-json.js'
import type { NetworkPort } from '../mesh/network-port.js'
import type { PeerVerifier } from '../mesh/peer-key.js'
import { defineMessage, type SignedEnvelope, type WireCodec } from '../mesh/wire-codec.js'
import { type JobSpec, jobSpecSchema, MAX_INLINE_BYTES } from './job-spec.js'
import { quoteSigningBytes } from './placement.js'
import { resultSigningBytes } from './result-signing.js'
import type { VerifiedRun } from './verification.js'

/**
 * What builders tell verifiers about the jobs they ran (docs/protocol.md, "Work receipts and fraud
 * evidence"). Both are signed by the builder's peer key in a wire envelope on the compute topic, and
 * both carry the nodes' own signatures, so a verifier believes nothing on the builder's word alone:
 *
 * - a **work receipt** says independent nodes returned the same signed output for a job, each with
 *   its signed quote (the price); verifiers count it as those nodes' verified work;
 * - **fraud evidence** is a node's signed result with the job's whole spec: a verifier re-runs the
 *   job in its own sandbox and, if its output differs from what the node signed, the node is caught.
 */

/** The gossip topic of receipts, evidence and slash signatures. */
export function computeTopic(network: string): string {
  return `meshwork/${network}/compute/1`
}

const hex64 = z.string().regex(/^[0-9a-f]{64}$/)
const sig = z.string().regex(/^[A-Za-z0-9_-]{85}[AQgw]$/)
const peerId = z.string().min(1).max(128)

export const WORK_RECEIPT = defineMessage(
  'receipt/compute',
  z
    .object({
      jobId: z.string().regex(/^[0-9a-f]{32}$/),
      codeHash: hex64,
      inputHash: hex64,
      outputHash: hex64,
      /** The nodes whose outputs matched, each with its quote and its result signature. */
      runs: z
        .array(
          z
            .object({
              node: peerId,
              price: z.string().regex(/^(0|[1-9][0-9]{0,30})$/),
              expiresAt: z.number().int().positive(),
              quoteSig: sig,
              resultSig: sig,
            })
            .strict(),
        )
        .min(2)
        .max(3),
    })
    .strict(),
  { maxBytes: 4_096 },
)
export type WorkReceiptBody = z.infer<typeof WORK_RECEIPT.schema>

/**
 * A verifier's EIP-712 `SlashNode` signature for confirmed fraud evidence, gossiped until a quorum
 * has signed (verifiers collect and submit them; nodes only relay them).
 */
export const SLASH_SIGNATURE = defineMessage(
  'slash/node',
  z
    .object({
      evidenceHash: z.string().regex(/^0x[0-9a-f]{64}$/),
      nodeId: z.string().regex(/^0x[0-9a-f]{64}$/),
      amount: z.string().regex(/^(0|[1-9][0-9]{0,77})$/),
      signature: z.string().regex(/^0x[0-9a-fA-F]{130}$/),
    })
    .strict(),
  { maxBytes: 2_048 },
)
export type SlashSignatureBody = z.infer<typeof SLASH_SIGNATURE.schema>

/** Largest spec carried in evidence (its JSON): bigger jobs cannot be re-run from gossip. */
export const MAX_EVIDENCE_SPEC_BYTES = 256 * 1024

export const FRAUD_EVIDENCE = defineMessage(
  'evidence/compute',
  z
    .object({
      spec: z.unknown(),
      /** The caught node, the output hash it signed, and its signature. */
      node: peerId,
      outputHash: hex64,
      sig,
    })
    .strict(),
  { maxBytes: MAX_EVIDENCE_SPEC_BYTES + 2_048 },
)
export type FraudEvidenceBody = z.infer<typeof FRAUD_EVIDENCE.schema>

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')
const inline = (blob: JobSpec['code']) =>
  'inline' in blob ? new Uint8Array(Buffer.from(blob.inline, 'base64')) : undefined

/**
 * Checks a work receipt's node signatures: each run's quote and result must be signed by its node
 * for this client (the envelope's signer), job and hashes, and the nodes must differ. Returns the
 * credited runs (node and price), or why it fails.
 */
export function checkReceipt(
  envelope: SignedEnvelope<WorkReceiptBody>,
  options: { network: string; verifier: PeerVerifier },
): { ok: true; runs: { node: string; price: bigint }[] } | { ok: false; reason: string } {
  const r = envelope.body
  const nodes = new Set(r.runs.map((run) => run.node))
  if (nodes.size !== r.runs.length) return { ok: false, reason: 'the same node twice' }
  const runs: { node: string; price: bigint }[] = []
  for (const run of r.runs) {
    const price = BigInt(run.price)
    const quote = quoteSigningBytes({
      net: options.network,
      jobId: r.jobId,
      node: run.node,
      client: envelope.from,
      price,
      expiresAt: run.expiresAt,
    })
    const result = resultSigningBytes({
      net: options.network,
      jobId: r.jobId,
      codeHash: r.codeHash,
      inputHash: r.inputHash,
      outputHash: r.outputHash,
      node: run.node,
      client: envelope.from,
    })
    if (!options.verifier.verify(run.node, quote, Buffer.from(run.quoteSig, 'base64url')))
      return { ok: false, reason: `a quote not signed by ${run.node}` }
    if (!options.verifier.verify(run.node, result, Buffer.from(run.resultSig, 'base64url')))
      return { ok: false, reason: `a result not signed by ${run.node}` }
    runs.push({ node: run.node, price })
  }
  return { ok: true, runs }
}

/** Fraud evidence whose node signature checks, ready to be re-run. */
export interface CheckedEvidence {
  spec: JobSpec
  code: Uint8Array
  input: Uint8Array
  node: string
  client: string
  /** The output hash the node signed. */
  outputHash: string
  /** keccak256 of the canonical evidence: what SlashNode signs, once per evidence. */
  evidenceHash: `0x${string}`
}

/**
 * Checks fraud evidence up to the re-run: a valid spec with inline code and input, and the node's
 * signature over that job's hashes and the output hash it claims, for the envelope's signer.
 */
export function checkEvidence(
  envelope: SignedEnvelope<FraudEvidenceBody>,
  options: { network: string; verifier: PeerVerifier },
): { ok: true; evidence: CheckedEvidence } | { ok: false; reason: string } {
  const parsed = jobSpecSchema.safeParse(envelope.body.spec)
  if (!parsed.success) return { ok: false, reason: 'not a valid job spec' }
  const spec = parsed.data
  const code = inline(spec.code)
  const input = inline(spec.input)
  if (!code || !input || code.length > MAX_INLINE_BYTES || input.length > MAX_INLINE_BYTES)
    return { ok: false, reason: 'code and input must be inline' }
  const commitment = {
    net: options.network,
    jobId: spec.id,
    codeHash: sha256(code),
    inputHash: sha256(input),
    outputHash: envelope.body.outputHash,
    node: envelope.body.node,
    client: envelope.from,
  }
  if (
    !options.verifier.verify(
      envelope.body.node,
      resultSigningBytes(commitment),
      Buffer.from(envelope.body.sig, 'base64url'),
    )
  )
    return { ok: false, reason: 'the result is not signed by the node' }
  return {
    ok: true,
    evidence: {
      spec,
      code,
      input,
      node: envelope.body.node,
      client: envelope.from,
      outputHash: envelope.body.outputHash,
      evidenceHash: keccak256(toBytes(`meshwork-fraud-v1\n${canonicalJson(commitment)}`)),
    },
  }
}

/**
 * Tells verifiers (on the compute topic) what a checked run found: a work receipt when independent
 * nodes matched (their verified work), and fraud evidence with the spec for every signed wrong result
 * (verifiers re-run it and slash). `codec` signs with the builder's peer key and knows both types.
 */
export async function reportRun(
  port: Pick<NetworkPort, 'publish'>,
  codec: WireCodec,
  options: { network: string; spec: JobSpec; run: VerifiedRun },
): Promise<{ receipts: number; evidence: number }> {
  const { spec, run } = options
  const topic = computeTopic(options.network)
  let receipts = 0
  let evidence = 0
  const matched = run.runs.filter((r) => r.result.outputHash === run.result.outputHash)
  if (run.verification !== 'signed' && matched.length >= 2) {
    const body: WorkReceiptBody = {
      jobId: spec.id,
      codeHash: run.result.codeHash,
      inputHash: run.result.inputHash,
      outputHash: run.result.outputHash,
      runs: matched.slice(0, 3).map((r) => ({
        node: r.quote.node,
        price: r.quote.price.toString(),
        expiresAt: r.quote.expiresAt,
        quoteSig: r.quote.sig,
        resultSig: r.result.sig,
      })),
    }
    await port.publish(topic, codec.encode(WORK_RECEIPT, body).bytes)
    receipts++
  }
  if (JSON.stringify(spec).length <= MAX_EVIDENCE_SPEC_BYTES)
    for (const e of run.evidence) {
      const body: FraudEvidenceBody = { spec, node: e.node, outputHash: e.signedOutputHash, sig: e.sig }
      await port.publish(topic, codec.encode(FRAUD_EVIDENCE, body).bytes)
      evidence++
    }
  return { receipts, evidence }
}
