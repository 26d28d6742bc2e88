import { canonicalJson } from '../core/canonical-json.js'

const SIGNING_PREFIX = 'meshwork-job-result-v1\n'

/** The hashes a result commits to (hex sha-256). */
export interface ResultCommitment {
  net: string
  jobId: string
  codeHash: string
  inputHash: string
  outputHash: string
  /** The node that ran it and the client it answered. */
  node: string
  client: string
}

/** The bytes a node signs for a result. */
export function resultSigningBytes(c: ResultCommitment): Uint8Array {
  return new TextEncoder().encode(
    SIGNING_PREFIX +
      canonicalJson({
        net: c.net,
        jobId: c.jobId,
        codeHash: c.codeHash,
        inputHash: c.inputHash,
        outputHash: c.outputHash,
        node: c.node,
        client: c.client,
      }),
  )
}
