import { createHash, randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { describe, expect, it } from 'vitest'
import { createPeerSigner, createPeerVerifier, type PeerSigner } from '../mesh/peer-key.js'
import { createWireCodec, type SignedEnvelope } from '../mesh/wire-codec.js'
import { parseJobSpec } from './job-spec.js'
import { quoteSigningBytes } from './placement.js'
import {
  checkEvidence,
  checkReceipt,
  FRAUD_EVIDENCE,
  type FraudEvidenceBody,
  WORK_RECEIPT,
  type WorkReceiptBody,
} from './receipts.js'
import { resultSigningBytes } from './result-signing.js'

const NET = '31337:0xreceipts'
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')
const b64url = (b: Uint8Array) => Buffer.from(b).toString('base64url')
const spec = parseJobSpec({
  v: 1,
  id: randomBytes(16).toString('hex'),
  kind: 'js',
  code: { inline: Buffer.from('(x) => x').toString('base64') },
  input: { inline: Buffer.from('1').toString('base64') },
  deadline: Date.now() + 60_000,
  maxPrice: '100',
})
const code = new Uint8Array(Buffer.from('(x) => x'))
const input = new Uint8Array(Buffer.from('1'))

async function parties() {
  const signer = async () => createPeerSigner(await generateKeyPair('Ed25519'))
  return { builder: await signer(), a: await signer(), b: await signer() }
}

/** What a node signs for this job's output `out`, for `client`. */
function run(node: PeerSigner, client: string, out: string) {
  const hashes = {
    jobId: spec.id,
    codeHash: sha(code),
    inputHash: sha(input),
    outputHash: sha(Buffer.from(out)),
  }
  const expiresAt = Date.now() + 5_000
  return {
    hashes,
    run: {
      node: node.peerId,
      price: '10',
      expiresAt,
      quoteSig: b64url(
        node.sign(
          quoteSigningBytes({ net: NET, jobId: spec.id, node: node.peerId, client, price: 10n, expiresAt }),
        ),
      ),
      resultSig: b64url(node.sign(resultSigningBytes({ net: NET, ...hashes, node: node.peerId, client }))),
    },
  }
}

function envelope<T>(signer: PeerSigner, type: typeof WORK_RECEIPT | typeof FRAUD_EVIDENCE, body: T) {
  const codec = createWireCodec({
    network: NET,
    signer,
    clock: { now: () => Date.now() },
    types: [WORK_RECEIPT, FRAUD_EVIDENCE],
    nextSeq: () => 1,
  })
  return JSON.parse(
    new TextDecoder().decode(codec.encode(type as typeof WORK_RECEIPT, body as never).bytes),
  ) as SignedEnvelope<T>
}

const options = { network: NET, verifier: createPeerVerifier() }

describe('work receipts', () => {
  it('credits each node that signed the matching result and its quote for this builder', async () => {
    const { builder, a, b } = await parties()
    const ra = run(a, builder.peerId, '1')
    const rb = run(b, builder.peerId, '1')
    const e = envelope<WorkReceiptBody>(builder, WORK_RECEIPT, { ...ra.hashes, runs: [ra.run, rb.run] })
    expect(checkReceipt(e, options)).toEqual({
      ok: true,
      runs: [
        { node: a.peerId, price: 10n },
        { node: b.peerId, price: 10n },
      ],
    })
  })

  it('refuses a receipt with a result the node did not sign, signed for another builder, or one node twice', async () => {
    const { builder, a, b } = await parties()
    const ra = run(a, builder.peerId, '1')
    // b signed another output.
    const other = run(b, builder.peerId, '2')
    expect(
      checkReceipt(envelope(builder, WORK_RECEIPT, { ...ra.hashes, runs: [ra.run, other.run] }), options),
    ).toMatchObject({ ok: false })
    // b's run was for someone else: a receipt cannot be made from results bought by another builder.
    const elsewhere = run(b, a.peerId, '1')
    expect(
      checkReceipt(envelope(builder, WORK_RECEIPT, { ...ra.hashes, runs: [ra.run, elsewhere.run] }), options),
    ).toMatchObject({ ok: false })
    expect(
      checkReceipt(envelope(builder, WORK_RECEIPT, { ...ra.hashes, runs: [ra.run, ra.run] }), options),
    ).toEqual({ ok: false, reason: 'the same node twice' })
  })
})

describe('fraud evidence', () => {
  it('holds when the node signed that output for that builder, and names it by a stable hash', async () => {
    const { builder, a } = await parties()
    const wrong = run(a, builder.peerId, '"forged"')
    const body: FraudEvidenceBody = {
      spec,
      node: a.peerId,
      outputHash: wrong.hashes.outputHash,
      sig: wrong.run.resultSig,
    }
    const first = checkEvidence(envelope(builder, FRAUD_EVIDENCE, body), options)
    expect(first).toMatchObject({
      ok: true,
      evidence: { node: a.peerId, outputHash: wrong.hashes.outputHash },
    })
    // The same evidence sent again (a later sequence number) has the same hash: it slashes once.
    const again = checkEvidence(envelope(builder, FRAUD_EVIDENCE, body), options)
    expect(again.ok && first.ok && again.evidence.evidenceHash === first.evidence.evidenceHash).toBe(true)
  })

  it('refuses evidence the node never signed, relayed by someone else, or without the job’s code', async () => {
    const { builder, a, b } = await parties()
    const wrong = run(a, builder.peerId, '"forged"')
    const body: FraudEvidenceBody = {
      spec,
      node: a.peerId,
      outputHash: sha(Buffer.from('"other"')),
      sig: wrong.run.resultSig,
    }
    expect(checkEvidence(envelope(builder, FRAUD_EVIDENCE, body), options)).toMatchObject({ ok: false })
    const real = { ...body, outputHash: wrong.hashes.outputHash }
    // b was not the client: the node's signature binds the builder's peer id.
    expect(checkEvidence(envelope(b, FRAUD_EVIDENCE, real), options)).toMatchObject({ ok: false })
    const byHash = { ...spec, code: { sha256: sha(code) } }
    expect(checkEvidence(envelope(builder, FRAUD_EVIDENCE, { ...real, spec: byHash }), options)).toEqual({
      ok: false,
      reason: 'code and input must be inline',
    })
    expect(checkEvidence(envelope(builder, FRAUD_EVIDENCE, { ...real, spec: { v: 2 } }), options)).toEqual({
      ok: false,
      reason: 'not a valid job spec',
    })
  })
})
