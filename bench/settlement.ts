/**
 * Settling an epoch: `npm run bench -- settlement`.
 *
 * - settle10k / settle100k / settle1M: for that many synthetic operators (one node each in one of
 *   200,000 H3 cells, observed by 3 verifiers, each with a location probe), the reward function, the new cumulative amounts (previous + epoch), the cumulative
 *   tree and every operator's proof (as the bytes a proof server keeps), in seconds. Each size runs
 *   in a child process of its own; settle1MRss is that child's peak resident memory. Generating the
 *   synthetic input is not timed (it is in the peak memory: a verifier holds its bundle).
 * - settle1M's baseline: building the same 1M-leaf tree with @openzeppelin/merkle-tree's
 *   StandardMerkleTree, in another child process; ratio = baseline / value. Its root must equal ours.
 * - observationVerify: signed uptime observations checked per second on one core (envelope shape,
 *   body schema, canonical JSON, Ed25519 signature: `verifyEnvelope`, as a verifier checks a bundle),
 *   against raw node:crypto Ed25519 verifies per second of the same signed bytes; ratio = value /
 *   baseline.
 *
 * `npm run bench -- settlement verify` (or `settle`, `baseline`) runs one part.
 */
import '../src/core/polyfill.js'
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { gridDisk, latLngToCell } from 'h3-js'
import { mulberry32 } from '../src/core/prng.js'
import {
  addPayouts,
  buildCumulativeTree,
  type CumulativeEntry,
  computeEpochRewards,
  type RewardInput,
  type RewardNode,
  type RewardParams,
  type UptimeObservation,
} from '../src/rewards/index.js'
import { report } from './report.js'

const BENCH = 'settlement'
const SIZES = [10_000, 100_000, 1_000_000] as const
const VERIFIERS = ['verifier-a', 'verifier-b', 'verifier-c']
const CHALLENGES = 12
const MESH = 10n ** 18n
const PARAMS: RewardParams = {
  version: 1,
  serviceWeightsBps: { uptime: 4_000, compute: 3_000, storage: 2_000, relay: 500, sensor: 500 },
  uptime: {
    thresholdPpm: 500_000,
    stakeCap: 10_000n * MESH,
    cellStakeCap: 10_000n * MESH,
    vettingEpochs: 3,
    vettingFactorBps: 5_000,
  },
  sensor: { cellCapacity: 5 },
}
const OBSERVATIONS = 20_000
/** 200,000 resolution-7 cells around Europe (a 1M-node epoch puts about five in each). */
const cells = () => gridDisk(latLngToCell(48, 10, 7), 258).slice(0, 200_000)
const NETWORK = '31337:0x00000000000000000000000000000000000000b2'
const CHILD_FLAG = '--meshwork-settlement-child'

/** A peer-id-like string (52 characters, as an Ed25519 libp2p peer id) for node `i`. */
const peerIdOf = (i: number) => `12D3KooW${i.toString(36).padStart(44, 'Z')}`

/**
 * An epoch of `n` operators with one node each: stakes, ages, observations, previous totals. Strings
 * and numbers come out as JSON.parse makes them out of a bundle (strings flat, an observation's node
 * id a string apart from the node list's; counts small integers).
 */
function syntheticEpoch(n: number): { input: RewardInput; previous: CumulativeEntry[] } {
  const next = mulberry32(n)
  // A draw in [0, k) as a small integer, as JSON.parse makes numbers: the generator's uint32 draws
  // are doubles to V8, and one double in a field boxes that field in every object of the shape
  // (16 bytes more per number: 150 MB more than a decoded bundle at a million nodes).
  const draw = (k: number) => (next() % k) | 0
  const CELLS = cells()
  // Each string its own flat copy, as JSON.parse makes them (one at a time: no whole-list copies).
  const parsed = (s: string) => JSON.parse(`"${s}"`) as string
  const nodes: RewardNode[] = []
  const uptime: UptimeObservation[] = []
  const previous: CumulativeEntry[] = []
  for (let i = 0; i < n; i++) {
    const peerId = peerIdOf(i)
    const operator = `0x${(i + 1).toString(16).padStart(40, '0')}`
    nodes.push({
      peerId: parsed(peerId),
      operator: parsed(operator) as `0x${string}`,
      stake: BigInt(100 + (next() % 20_000)) * MESH,
      registeredEpoch: draw(100),
      // A registered cell, as production bundles list them: about five nodes a cell on average.
      cell: parsed(CELLS[next() % CELLS.length] as string),
    })
    // Most nodes are up nearly always; a tenth are flaky.
    const flaky = next() % 10 === 0
    for (const verifier of VERIFIERS) {
      const missed = flaky ? draw(CHALLENGES + 1) : draw(2)
      // With a location probe, as verifiers with a place send (a plausible one: nothing ruled out).
      uptime.push({
        verifier,
        node: parsed(peerId),
        challenges: CHALLENGES,
        answered: CHALLENGES - missed,
        probe: { rttMs: 20 + draw(200), distanceKm: draw(2_000) },
      })
    }
    previous.push({
      account: parsed(operator) as `0x${string}`,
      cumulativeAmount: BigInt(next()) * 10n ** 12n,
    })
  }
  return { input: { epoch: 100, emission: 34_000n * MESH, nodes, verifiers: VERIFIERS, uptime }, previous }
}

/** The new cumulative table: previous plus this epoch's payouts. */
function cumulative(input: RewardInput, previous: readonly CumulativeEntry[]): CumulativeEntry[] {
  return addPayouts(previous, computeEpochRewards(input, PARAMS).payouts)
}

interface SettleResult {
  seconds: number
  rewardsS: number
  treeS: number
  proofsS: number
  proofBytes: number
  root: string
  maxRssMb: number
}

/** Child: settles `n` operators and reports the times and its peak memory. */
function settleChild(n: number): SettleResult {
  const { input, previous } = syntheticEpoch(n)
  const t0 = performance.now()
  const entries = cumulative(input, previous)
  const t1 = performance.now()
  const tree = buildCumulativeTree(entries)
  const t2 = performance.now()
  // Every proof, into one buffer as a proof server writes them into its responses.
  const out = new Uint8Array(32 * 64)
  let proofBytes = 0
  for (const i of tree.leafOrder()) proofBytes += tree.proofInto(i, out, 0)
  const t3 = performance.now()
  return {
    seconds: (t3 - t0) / 1000,
    rewardsS: (t1 - t0) / 1000,
    treeS: (t2 - t1) / 1000,
    proofsS: (t3 - t2) / 1000,
    proofBytes,
    root: tree.root,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
  }
}

/** Child: the same tree with OpenZeppelin's library. */
async function baselineChild(n: number): Promise<{ seconds: number; root: string; maxRssMb: number }> {
  const { StandardMerkleTree } = await import('@openzeppelin/merkle-tree')
  const { input, previous } = syntheticEpoch(n)
  const entries = cumulative(input, previous)
  const values = entries.map((e) => [e.account, e.cumulativeAmount.toString()])
  const t0 = performance.now()
  const tree = StandardMerkleTree.of(values, ['address', 'uint256'])
  const seconds = (performance.now() - t0) / 1000
  return { seconds, root: tree.root, maxRssMb: process.resourceUsage().maxRSS / 1024 }
}

function inChild<T>(kind: 'settle' | 'baseline', n: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), [CHILD_FLAG, kind, String(n)], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    })
    child.once('message', (m) => resolve(m as T))
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`${kind} ${n} child exited with ${code}`))
    })
  })
}

async function observationVerify(): Promise<void> {
  // Imported here, not at the top: the settling child loads only what settling needs (its peak
  // memory is measured).
  const { createPublicKey, verify } = await import('node:crypto')
  const { generateKeyPair } = await import('@libp2p/crypto/keys')
  const { canonicalJson } = await import('../src/core/canonical-json.js')
  const { createPeerSigner, createPeerVerifier } = await import('../src/mesh/peer-key.js')
  const { createWireCodec, verifyEnvelope } = await import('../src/mesh/wire-codec.js')
  const { UPTIME_OBSERVATION } = await import('../src/verifier/observation.js')
  const key = await generateKeyPair('Ed25519')
  let seq = 0
  const codec = createWireCodec({
    network: NETWORK,
    signer: createPeerSigner(key),
    clock: { now: () => 1_700_000_000_000 },
    types: [UPTIME_OBSERVATION],
    nextSeq: () => ++seq,
  })
  const envelopes: unknown[] = []
  for (let i = 0; i < OBSERVATIONS; i++) {
    const body = { epoch: 100, node: `12D3KooWnode${i}`, challenges: 12, answered: 12 - (i % 3) }
    envelopes.push(JSON.parse(new TextDecoder().decode(codec.encode(UPTIME_OBSERVATION, body).bytes)))
  }
  // Baseline input: the exact bytes each signature covers, and a ready public key.
  const publicKey = createPublicKey({
    key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), key.publicKey.raw]),
    format: 'der',
    type: 'spki',
  })
  const signed = envelopes.map((e) => {
    const { sig, ...unsigned } = e as { sig: string }
    return {
      data: Buffer.from(`meshwork-wire-v1\n${canonicalJson(unsigned)}`),
      sig: Buffer.from(sig, 'base64url'),
    }
  })

  const verifier = createPeerVerifier()
  const options = { network: NETWORK, verifier }
  const rounds: { value: number; baseline: number }[] = []
  for (let round = 0; round < 5; round++) {
    let t = performance.now()
    for (const e of envelopes)
      if (!verifyEnvelope(e, UPTIME_OBSERVATION, options).ok) throw new Error('bad observation')
    const value = OBSERVATIONS / ((performance.now() - t) / 1000)
    t = performance.now()
    for (const s of signed) if (!verify(null, s.data, publicKey, s.sig)) throw new Error('bad signature')
    const baseline = OBSERVATIONS / ((performance.now() - t) / 1000)
    rounds.push({ value, baseline })
  }
  // Median round by ratio (the first is warm-up for both).
  const measured = rounds.slice(1).sort((a, b) => a.value / a.baseline - b.value / b.baseline)
  const mid = measured[Math.floor(measured.length / 2)] as { value: number; baseline: number }
  report({
    bench: BENCH,
    metric: 'observationVerify',
    value: Math.round(mid.value),
    unit: 'observations/s',
    baseline: Math.round(mid.baseline),
    ratio: Math.round((mid.value / mid.baseline) * 1000) / 1000,
    target: 'ratio >= 0.7',
    note: `verifyEnvelope (shape, schema, canonical JSON, Ed25519) on one core vs node:crypto verify of the same signed bytes; median of 4 rounds of ${OBSERVATIONS}`,
  })
}

const PARTS = ['settle', 'baseline', 'verify'] as const

export async function run(args: string[] = []): Promise<void> {
  const unknown = args.filter((a) => !(PARTS as readonly string[]).includes(a))
  if (unknown.length > 0) throw new Error(`unknown part ${unknown.join(', ')} (parts: ${PARTS.join(', ')})`)
  const wanted = (part: (typeof PARTS)[number]) => args.length === 0 || args.includes(part)

  if (wanted('verify')) await observationVerify()
  let ours: SettleResult | undefined
  if (wanted('settle')) {
    for (const n of SIZES) {
      const r = await inChild<SettleResult>('settle', n)
      const label = n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1_000}k`
      if (n === 1_000_000) ours = r
      else {
        report({
          bench: BENCH,
          metric: `settle${label}`,
          value: round3(r.seconds),
          unit: 's',
          rewardsS: round3(r.rewardsS),
          treeS: round3(r.treeS),
          proofsS: round3(r.proofsS),
          maxRssMb: Math.round(r.maxRssMb),
        })
      }
    }
  }
  const base = wanted('baseline')
    ? await inChild<{ seconds: number; root: string; maxRssMb: number }>('baseline', 1_000_000)
    : undefined
  if (ours !== undefined) {
    report({
      bench: BENCH,
      metric: 'settle1M',
      value: round3(ours.seconds),
      unit: 's',
      ...(base === undefined
        ? {}
        : {
            baseline: round3(base.seconds),
            ratio: round3(base.seconds / ours.seconds),
            rootsMatch: base.root === ours.root,
          }),
      rewardsS: round3(ours.rewardsS),
      treeS: round3(ours.treeS),
      proofsS: round3(ours.proofsS),
      proofMb: Math.round(ours.proofBytes / 1024 / 1024),
      target: '<= 5 s, ratio >= 10',
      note: 'reward function + cumulative amounts + tree + every proof (bytes), 1M operators, 3 verifiers; baseline: StandardMerkleTree.of on the same 1M entries',
    })
    report({
      bench: BENCH,
      metric: 'settle1MRss',
      value: Math.round(ours.maxRssMb),
      unit: 'MB',
      ...(base === undefined ? {} : { baselineRssMb: Math.round(base.maxRssMb) }),
      target: '<= 1536',
      note: 'peak RSS of the settling child process (input generation included; tsx loaded)',
    })
  }
}

const round3 = (x: number) => Math.round(x * 1000) / 1000

if (process.argv.includes(CHILD_FLAG)) {
  const at = process.argv.indexOf(CHILD_FLAG)
  const kind = process.argv[at + 1]
  const n = Number(process.argv[at + 2])
  const result = kind === 'settle' ? settleChild(n) : await baselineChild(n)
  if (process.send) process.send(result, () => process.exit(0))
  else console.log(JSON.stringify(result))
}
