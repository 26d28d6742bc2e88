import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import type { NetworkPort } from '../mesh/network-port.js'
import type { PeerVerifier } from '../mesh/peer-key.js'
import { type RewardParams, rebateCapOf } from '../rewards/index.js'
import {
  bundleCid,
  type CheckedBundle,
  checkBundle,
  paramsDifference,
  type Settlement,
  settleBundle,
} from './bundle.js'
import type { VerifierChain } from './chain-port.js'
import { VerifierError } from './errors.js'
import { BUNDLE_PROTOCOL, MAX_BUNDLE_BYTES } from './verifier-agent.js'

/**
 * Auditing a posted epoch: fetch its bundle by the CID of the digest posted on-chain, check it,
 * recompute the root and compare. Anyone can do it with a read-only RPC and one bundle source;
 * `meshwork rewards show|claim|verify` and a verifier's proof endpoint are built on it.
 */

/** Somewhere bundles can be fetched from by CID. */
export interface BundleSource {
  /** Where, for messages ("http://127.0.0.1:9470", "peer 12D3Koo…"). */
  readonly name: string
  fetch(cid: string): Promise<Uint8Array>
}

/** Whether `bytes` hash to the digest inside `cid` (sha2-256): a source cannot pass off other bytes. */
export function bytesMatchCid(bytes: Uint8Array, cid: string): boolean {
  const digest = CID.parse(cid).multihash.digest
  return Buffer.compare(createHash('sha256').update(bytes).digest(), Buffer.from(digest)) === 0
}

/** The bundles a verifier serves over HTTP at `baseUrl` (its ops port: `GET /bundles/CID`). */
export function httpBundleSource(baseUrl: string, options: { timeoutMs?: number } = {}): BundleSource {
  const base = baseUrl.replace(/\/+$/, '')
  return {
    name: base,
    async fetch(cid) {
      const res = await fetch(`${base}/bundles/${cid}`, {
        signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
      })
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      const declared = Number(res.headers.get('content-length') ?? 0)
      if (declared > MAX_BUNDLE_BYTES) throw new Error(`bundle of ${declared} bytes is too large`)
      const chunks: Uint8Array[] = []
      let size = 0
      for await (const chunk of res.body ?? []) {
        size += (chunk as Uint8Array).byteLength
        if (size > MAX_BUNDLE_BYTES) throw new Error('bundle too large')
        chunks.push(chunk as Uint8Array)
      }
      return new Uint8Array(Buffer.concat(chunks))
    },
  }
}

/** The bundles peer `peerId` serves over the mesh ({@link BUNDLE_PROTOCOL}). */
export function meshBundleSource(port: NetworkPort, peerId: string): BundleSource {
  return {
    name: `peer ${peerId}`,
    fetch: (cid) =>
      port.request(peerId, BUNDLE_PROTOCOL, new TextEncoder().encode(cid), {
        maxResponseBytes: MAX_BUNDLE_BYTES,
        timeoutMs: 30_000,
      }),
  }
}

/** Fetches `cid` from the first source that has it with the right bytes. */
export async function fetchBundle(cid: string, sources: readonly BundleSource[]): Promise<Uint8Array> {
  const failures: string[] = []
  for (const source of sources) {
    try {
      const bytes = await source.fetch(cid)
      if (bytesMatchCid(bytes, cid)) return bytes
      failures.push(`${source.name}: bytes of another digest`)
    } catch (err) {
      failures.push(`${source.name}: ${(err as Error).message}`)
    }
  }
  throw new VerifierError('BUNDLE_UNAVAILABLE', `no source served bundle ${cid}`, {
    hint:
      sources.length === 0
        ? 'Pass --bundle-url URL (a verifier’s ops address), or put verifiers in the network file’s bootstrap list'
        : 'Pass --bundle-url with a verifier’s ops address that holds it',
    details: { cid, failures },
  })
}

/** One posted epoch, recomputed from its bundle. */
export interface EpochAudit {
  epoch: number
  cid: string
  /** What the chain holds. */
  posted: { root: `0x${string}`; digest: `0x${string}`; totalCumulative: bigint; block: bigint }
  bundle: CheckedBundle
  /**
   * The epoch's reward parameter set: the one the bundle records, the one NetworkParams holds for
   * the epoch, and how they differ (undefined when they are the same set with the same version).
   */
  params: { bundle: RewardParams; chain: RewardParams; difference: string | undefined }
  /**
   * The payment fees burned in the epoch (which cap compute rewards): how the bundle's list differs
   * from Payments' events in the epoch's blocks; undefined when they are the same, or when the
   * parameter set has no rebate cap or the context no epoch schedule to find the blocks by.
   */
  burns: { difference: string | undefined }
  /** The bundle settled with the chain's parameter set for the epoch (not the bundle's own). */
  settlement: Settlement
  /** Whether the bundle used the chain's parameters and the recomputed root and total equal the posted ones. */
  matches: boolean
}

/** What {@link auditEpoch} needs. */
export interface AuditContext {
  /**
   * Posted roots, each epoch's reward parameter set as NetworkParams holds it, and (with `schedule`)
   * the blocks and payment fees of an epoch.
   */
  chain: Pick<VerifierChain, 'postedRoots' | 'paramsAt'> &
    Partial<Pick<VerifierChain, 'firstBlockAtOrAfter' | 'paymentFees'>>
  /** The epochs' clock (network.json's `genesisTime` and `epochDuration`): to check the burns. */
  schedule?: { genesisTime: number; epochDuration: number }
  sources: readonly BundleSource[]
  /** The network id the bundle's observations are signed for. */
  network: string
  verifier: PeerVerifier
}

/**
 * Recomputes posted epoch `epoch` from its bundle: the bundle's bytes must hash to the posted digest
 * and check (signatures, canonical form, the carried table against the previous posted root); the
 * bundle's parameter set is compared with the chain's for the epoch (NetworkParams' `paramsAt`), and
 * the bundle is settled with the chain's set. `matches` says whether the parameters are the chain's
 * and the root and total are the posted ones; `params.difference` says what differs.
 *
 * @throws VerifierError EPOCH_NOT_POSTED, BUNDLE_UNAVAILABLE or BUNDLE_INVALID.
 */
export async function auditEpoch(epoch: number, ctx: AuditContext): Promise<EpochAudit> {
  const roots = await ctx.chain.postedRoots()
  const posted = roots.get(epoch)
  if (posted === undefined) {
    const last = roots.size === 0 ? undefined : Math.max(...roots.keys())
    throw new VerifierError('EPOCH_NOT_POSTED', `epoch ${epoch} has no posted root`, {
      hint:
        last === undefined
          ? 'No root is posted yet: wait for the first epoch to close'
          : `The newest posted epoch is ${last}`,
      details: { epoch, ...(last === undefined ? {} : { lastPosted: last }) },
    })
  }
  const cid = bundleCid(posted.digest)
  const bytes = await fetchBundle(cid, ctx.sources)
  const checked = checkBundle(bytes, {
    network: ctx.network,
    verifier: ctx.verifier,
    previousRoot: roots.get(epoch - 1)?.root ?? null,
  })
  if (!checked.ok) {
    throw new VerifierError(
      'BUNDLE_INVALID',
      `the bundle of epoch ${epoch} does not check: ${checked.fault}`,
      {
        hint: 'The posted root cannot be recomputed: report it to the verifiers (it may be revoked)',
        details: { epoch, cid, fault: checked.fault, ...(checked.detail ? { detail: checked.detail } : {}) },
      },
    )
  }
  const chainParams = await ctx.chain.paramsAt(epoch)
  const difference = paramsDifference(checked.bundle.params, chainParams)
  // The burns as the chain has them: the bundle is settled with those too.
  let burnsDifference: string | undefined
  let input = checked.bundle.input
  const burns = rebateCapOf(chainParams) === undefined ? undefined : await chainBurns(epoch, ctx)
  if (burns !== undefined) {
    burnsDifference = burnsDiffer(input.burned ?? [], burns)
    input = { ...input, burned: [...burns] }
  }
  const settlement = settleBundle({ ...checked.bundle, input, params: chainParams })
  return {
    epoch,
    cid,
    posted,
    bundle: checked.bundle,
    params: { bundle: checked.bundle.params, chain: chainParams, difference },
    burns: { difference: burnsDifference },
    settlement,
    matches:
      difference === undefined &&
      burnsDifference === undefined &&
      settlement.root === posted.root.toLowerCase() &&
      settlement.totalCumulative === posted.totalCumulative,
  }
}

/** Payment fees burned in `epoch`'s blocks per provider, or undefined when the context cannot tell. */
async function chainBurns(epoch: number, ctx: AuditContext): Promise<Map<string, bigint> | undefined> {
  const { chain, schedule } = ctx
  if (schedule === undefined || chain.firstBlockAtOrAfter === undefined || chain.paymentFees === undefined)
    return undefined
  const start = await chain.firstBlockAtOrAfter(schedule.genesisTime + epoch * schedule.epochDuration)
  const next = await chain.firstBlockAtOrAfter(schedule.genesisTime + (epoch + 1) * schedule.epochDuration)
  if (start === undefined || next === undefined) return undefined
  return chain.paymentFees(start.number, next.number - 1n)
}

/** The first difference between a bundle's burns and the chain's, for people; undefined when equal. */
function burnsDiffer(
  listed: readonly (readonly [string, bigint])[],
  chain: ReadonlyMap<string, bigint>,
): string | undefined {
  const held = new Map(listed.map(([operator, amount]) => [operator.toLowerCase(), amount]))
  for (const [operator, amount] of chain)
    if (amount > 0n && held.get(operator) !== amount)
      return `${operator} burned ${amount}, the bundle says ${held.get(operator) ?? 0n}`
  for (const [operator, amount] of held)
    if ((chain.get(operator) ?? 0n) !== amount)
      return `${operator}: the bundle says ${amount} burned, the chain ${chain.get(operator) ?? 0n}`
  return undefined
}
