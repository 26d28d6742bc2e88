import type { Command } from 'commander'
import { formatUnits } from 'viem'
import { claim, claimMany, connectChain, epochRewardsAbi, readContract } from '../../chain/index.js'
import { InvalidArgumentError } from '../../core/errors.js'
import { createLogger } from '../../core/logger.js'
import { createPeerVerifier } from '../../mesh/peer-key.js'
import { networkIdOf } from '../../mesh/wire-codec.js'
import { lowerAddress, type UptimeExplanation } from '../../rewards/index.js'
import { type AuditContext, auditEpoch, type EpochAudit } from '../../verifier/audit.js'
import { createEvmVerifierChain } from '../../verifier/chain-port.js'
import { VerifierError } from '../../verifier/errors.js'
import { commandBundleSources } from '../bundle-sources.js'
import { globalOptions, resolvePrivateKey } from '../context.js'
import { DEFAULT_NETWORK_FILE, type NetworkFlags, openNetwork } from '../network-option.js'
import { createOutput, type Output } from '../output.js'
import { parseAddress, parsePositiveInt } from '../parse.js'

interface AuditFlags extends NetworkFlags {
  bundleUrl?: string[]
}

/** Claims retried when the claimable root moves on meanwhile. */
const CLAIM_ATTEMPTS = 3
/** Most accounts one claimMany transaction carries (gas stays well under a block). */
const CLAIM_BATCH = 100

/** Amounts for people: MESH with at most 6 decimals. */
function mesh(amount: bigint): string {
  const [whole, fraction = ''] = formatUnits(amount, 18).split('.')
  const cut = fraction.slice(0, 6).replace(/0+$/, '')
  return `${whole}${cut ? `.${cut}` : ''} MESH`
}

/** Reads the chain and audits posted epochs from their bundles; `close()` leaves the mesh. */
async function openAuditor(flags: AuditFlags, verbose: boolean) {
  const { network, reader } = await openNetwork(flags)
  const chain = createEvmVerifierChain(reader, { deployBlock: BigInt(network.deployBlock) })
  const logger = createLogger({ level: verbose ? 'debug' : 'silent' })
  const bundles = commandBundleSources({
    network,
    urls: flags.bundleUrl ?? [],
    verifiers: async () => (await chain.registry((await chain.head()).number)).verifiers.map((v) => v.peerId),
    logger,
  })
  const ctx: AuditContext = {
    chain,
    schedule: {
      genesisTime: network.parameters.genesisTime,
      epochDuration: network.parameters.epochDuration,
    },
    sources: bundles.sources,
    network: networkIdOf(network),
    verifier: createPeerVerifier(),
  }
  const claimed = (account: `0x${string}`) =>
    readContract<bigint>(reader, {
      address: network.contracts.EpochRewards,
      abi: epochRewardsAbi,
      functionName: 'claimed',
      args: [account],
    })
  const claimable = async () => {
    const [root, epoch] = await readContract<[`0x${string}`, bigint, bigint]>(reader, {
      address: network.contracts.EpochRewards,
      abi: epochRewardsAbi,
      functionName: 'claimableRoot',
      args: [],
    })
    return /^0x0+$/.test(root) ? undefined : Number(epoch)
  }
  return { network, reader, chain, ctx, claimed, claimable, close: () => bundles.close() }
}

function auditOptions(cmd: Command): Command {
  return cmd
    .option('--network <file>', 'the network file', DEFAULT_NETWORK_FILE)
    .option('--rpc <url>', "JSON-RPC URL (default: the network file's)")
    .option(
      '--bundle-url <url...>',
      "a verifier's ops address to fetch bundles from (default: over the mesh, from the network file's bootstrap peers)",
    )
}

/** One account's view of one epoch. */
interface AccountEpoch {
  account: `0x${string}`
  earned: bigint
  cumulative: bigint
  nodes: UptimeExplanation[]
}

/** Each shown account's earnings in one epoch, with its nodes' explanations (one pass over the nodes). */
function accountEpochs(audit: EpochAudit, accounts: readonly `0x${string}`[]): AccountEpoch[] {
  const nodes = new Map<string, UptimeExplanation[]>(accounts.map((a) => [a, []]))
  for (const n of audit.settlement.rewards.uptime.list()) nodes.get(n.operator)?.push(n)
  return accounts.map((account) => ({
    account,
    earned: audit.settlement.rewards.payouts.get(account) ?? 0n,
    cumulative: audit.settlement.tree.proof(account)?.cumulativeAmount ?? 0n,
    nodes: nodes.get(account) ?? [],
  }))
}

/**
 * The error for an epoch whose bundle did not use the reward parameters NetworkParams holds for it
 * (a leader's own choice, or a set from another epoch): its posted root is not the network's.
 */
function paramsMismatch(audit: EpochAudit, hint: string): VerifierError {
  const { bundle, chain, difference } = audit.params
  return new VerifierError(
    'PARAMS_MISMATCH',
    `epoch ${audit.epoch}: the bundle used reward parameters version ${bundle.version}, but NetworkParams holds version ${chain.version} for epoch ${audit.epoch} (${difference})`,
    {
      hint,
      details: {
        epoch: audit.epoch,
        cid: audit.cid,
        bundleVersion: bundle.version,
        chainVersion: chain.version,
        difference,
        posted: audit.posted.root,
        recomputed: audit.settlement.root,
      },
    },
  )
}

function printAccountEpoch(out: Output, a: AccountEpoch): void {
  out.info(`  ${a.account}  +${mesh(a.earned)}  (cumulative ${mesh(a.cumulative)})`)
  for (const n of a.nodes) {
    const score = (n.scorePpm / 10_000).toFixed(1)
    out.info(
      `    node ${n.peerId}  uptime ${score}%${n.eligible ? '' : ' (below the threshold: no uptime reward)'}${n.vetting ? ' (vetting)' : ''}  reward ${mesh(n.reward)}`,
    )
    for (const v of n.verifiers) {
      const missed = v.challenges - v.answered
      out.info(
        `      verifier ${v.verifier}: answered ${v.answered} of ${v.challenges}${missed > 0 ? `, missed ${missed}` : ''}`,
      )
    }
    if (n.verifiers.length === 0) out.info('      no verifier observed it this epoch')
  }
}

/** `meshwork rewards show|claim|verify`. */
export function rewardsCommands(program: Command): Command {
  const rewards = program
    .command('rewards')
    .description('what operators earned, why, claiming it, and auditing posted roots')

  auditOptions(
    rewards
      .command('show')
      .description('rewards per epoch and cumulative, with why (challenges answered and missed per verifier)')
      .option('--address <address...>', 'operator address(es) to show (default: every operator paid)')
      .option('--epoch <n>', 'show this posted epoch (default: the newest)')
      .option('--last <n>', 'show this many posted epochs up to --epoch', '1'),
  ).action(async (opts: AuditFlags & { address?: string[]; epoch?: string; last: string }, cmd: Command) => {
    const g = globalOptions(cmd)
    const out = createOutput(g)
    const accounts = (opts.address ?? []).map((a) => lowerAddress(parseAddress(a, '--address')))
    const last = parsePositiveInt(opts.last, '--last', 100)
    const auditor = await openAuditor(opts, g.verbose)
    try {
      const roots = await auditor.chain.postedRoots()
      if (roots.size === 0)
        throw new VerifierError('EPOCH_NOT_POSTED', 'no epoch has a posted root yet', {
          hint: 'Wait for the verifiers to close the first epoch',
        })
      const newest = opts.epoch === undefined ? Math.max(...roots.keys()) : parsePositiveIntOrZero(opts.epoch)
      const epochs = []
      for (let e = Math.max(0, newest - last + 1); e <= newest; e++) {
        out.step(`fetching and checking the bundle of epoch ${e}`)
        const audit = await auditEpoch(e, auditor.ctx)
        const shown =
          accounts.length > 0 ? accounts : [...audit.settlement.rewards.payouts.entries()].map(([a]) => a)
        epochs.push({ audit, accounts: accountEpochs(audit, shown.sort()) })
      }
      const claimableEpoch = await auditor.claimable()
      const totals = []
      for (const account of accounts) {
        const final = epochs.at(-1)?.accounts.find((a) => a.account === account)
        const claimed = await auditor.claimed(account)
        totals.push({ account, cumulative: final?.cumulative ?? 0n, claimed })
      }
      out.json({
        epochs: epochs.map(({ audit, accounts: list }) => ({
          epoch: audit.epoch,
          root: audit.posted.root,
          cid: audit.cid,
          matches: audit.matches,
          paramsVersion: audit.params.chain.version,
          paramsMatch: audit.params.difference === undefined,
          emission: audit.settlement.rewards.emission,
          paid: audit.settlement.rewards.total,
          accounts: list,
        })),
        claimableEpoch: claimableEpoch ?? null,
        accounts: totals,
      })
      for (const { audit, accounts: list } of epochs) {
        const r = audit.settlement.rewards
        out.info(
          `epoch ${audit.epoch}  root ${audit.posted.root}  ${audit.matches ? 'recomputed: equal' : 'recomputed: DIFFERENT'}  parameters v${audit.params.chain.version}`,
        )
        if (audit.params.difference !== undefined)
          out.info(
            `  the bundle's reward parameters are not the chain's (${audit.params.difference}); amounts below use the chain's`,
          )
        out.info(`  emission ${mesh(r.emission)}, paid ${mesh(r.total)} to ${r.payouts.size} operators`)
        for (const a of list.slice(0, accounts.length > 0 ? list.length : 20)) printAccountEpoch(out, a)
        if (accounts.length === 0 && list.length > 20)
          out.info(`  … and ${list.length - 20} more (--address A)`)
      }
      for (const t of totals) {
        out.info(`${t.account}: earned ${mesh(t.cumulative)} in total, claimed ${mesh(t.claimed)}`)
      }
      if (claimableEpoch !== undefined)
        out.info(`claims use epoch ${claimableEpoch}'s root (past its dispute window)`)
    } finally {
      await auditor.close()
    }
  })

  auditOptions(
    rewards
      .command('claim')
      .description("claim what an account earned (the claimable root's amount minus what it claimed)")
      .option(
        '--address <address...>',
        "account(s) to claim for (default: the sender's); several go in one claimMany",
      )
      .option(
        '--all',
        'claim for every account of --address, or with none every account the root pays, in one claimMany',
      )
      .option(
        '--key-file <file>',
        'send from this key (default $MESHWORK_PRIVATE_KEY; dev account 0 on the dev chain)',
      ),
  ).action(
    async (opts: AuditFlags & { address?: string[]; all?: boolean; keyFile?: string }, cmd: Command) => {
      const g = globalOptions(cmd)
      const out = createOutput(g)
      const auditor = await openAuditor(opts, g.verbose)
      try {
        const { key } = resolvePrivateKey({
          ...(opts.keyFile ? { keyFile: opts.keyFile } : {}),
          chainId: auditor.network.chainId,
        })
        const client = await connectChain({
          chainId: auditor.network.chainId,
          contracts: auditor.network.contracts,
          rpc: opts.rpc ?? auditor.network.rpcUrl,
          privateKey: key,
        })
        const { epoch, claims, skipped, txs } = await (async () => {
          for (let attempt = 1; ; attempt++) {
            const epoch = await auditor.claimable()
            if (epoch === undefined)
              throw new VerifierError('EPOCH_NOT_POSTED', 'no root is claimable yet', {
                hint: 'Wait until a posted root is past its dispute window',
              })
            out.step(`fetching and checking the bundle of epoch ${epoch} (the claimable root)`)
            const audit = await auditEpoch(epoch, auditor.ctx)
            if (audit.params.difference !== undefined)
              throw paramsMismatch(
                audit,
                'Do not claim against it; report it to the verifiers so that they revoke it within the dispute window',
              )
            if (!audit.matches)
              throw new VerifierError(
                'ROOT_MISMATCH',
                `epoch ${epoch}'s bundle does not settle to its posted root`,
                {
                  hint: 'Do not claim against it; run `meshwork rewards verify` and report it to the verifiers',
                  details: { epoch, posted: audit.posted.root, recomputed: audit.settlement.root },
                },
              )
            const given = (opts.address ?? []).map((a) => lowerAddress(parseAddress(a, '--address')))
            const accounts =
              given.length > 0
                ? given
                : opts.all
                  ? audit.settlement.entries.map((e) => e.account)
                  : [lowerAddress(client.wallet.account.address)]
            const claims = []
            const skipped: { account: string; reason: string }[] = []
            for (const account of accounts) {
              const leaf = audit.settlement.tree.proof(account)
              if (leaf === undefined) {
                skipped.push({ account, reason: 'not in the root' })
                continue
              }
              const already = await auditor.claimed(account)
              if (leaf.cumulativeAmount <= already) {
                skipped.push({ account, reason: 'nothing new to claim' })
                continue
              }
              claims.push({
                account,
                cumulativeAmount: leaf.cumulativeAmount,
                proof: leaf.proof,
                amount: leaf.cumulativeAmount - already,
              })
            }
            if (claims.length === 0 && given.length <= 1 && !opts.all) {
              const why = skipped[0]
              throw new VerifierError(
                'NOT_IN_ROOT',
                `${why?.account ?? accounts[0]}: ${why?.reason ?? 'nothing to claim'} in epoch ${epoch}`,
                {
                  hint:
                    why?.reason === 'not in the root'
                      ? 'Check the address: it has earned nothing yet'
                      : 'Claim again after the next root',
                  details: { epoch, ...(why ?? {}) },
                },
              )
            }
            const txs: string[] = []
            try {
              for (let i = 0; i < claims.length; i += CLAIM_BATCH) {
                const batch = claims.slice(i, i + CLAIM_BATCH)
                out.step(
                  `claiming for ${batch.length} account(s)`,
                  i / CLAIM_BATCH + 1,
                  Math.ceil(claims.length / CLAIM_BATCH),
                )
                const tx =
                  batch.length === 1 && !opts.all && given.length <= 1
                    ? await claim(client, batch[0] as (typeof claims)[number])
                    : await claimMany(client, batch)
                txs.push(tx.hash)
              }
            } catch (err) {
              // A newer root became claimable (and the proved one left the ring) while this one was
              // checked: claim again against the new one, a few times at most.
              const moved =
                (err as { code?: string }).code === 'CLAIM_INVALID_PROOF' &&
                attempt < CLAIM_ATTEMPTS &&
                (await auditor.claimable()) !== epoch
              if (!moved) throw err
              out.step('the claimable root moved on while claiming; claiming against the new one')
              continue
            }
            return { epoch, claims, skipped, txs }
          }
        })()
        out.json({
          epoch,
          claimed: claims.map((c) => ({
            account: c.account,
            amount: c.amount,
            cumulativeAmount: c.cumulativeAmount,
          })),
          skipped,
          txs,
        })
        for (const c of claims) out.info(`Claimed ${mesh(c.amount)} for ${c.account} (epoch ${epoch})`)
        for (const s of skipped) out.info(`Skipped ${s.account}: ${s.reason}`)
        if (txs.length > 0) out.info(`  in tx ${txs.join(', ')}`)
      } finally {
        await auditor.close()
      }
    },
  )

  auditOptions(
    rewards
      .command('verify')
      .description(
        "recompute an epoch's root from its bundle and compare with the chain (exit 0 only if equal)",
      )
      .requiredOption('--epoch <n>', 'the posted epoch to verify'),
  ).action(async (opts: AuditFlags & { epoch: string }, cmd: Command) => {
    const g = globalOptions(cmd)
    const out = createOutput(g)
    const epoch = parsePositiveIntOrZero(opts.epoch)
    const auditor = await openAuditor(opts, g.verbose)
    try {
      out.step(`fetching the bundle of epoch ${epoch}`)
      const audit = await auditEpoch(epoch, auditor.ctx)
      const summary = {
        epoch,
        cid: audit.cid,
        posted: { root: audit.posted.root, totalCumulative: audit.posted.totalCumulative },
        recomputed: { root: audit.settlement.root, totalCumulative: audit.settlement.totalCumulative },
        observations: audit.bundle.input.uptime.length,
        accounts: audit.settlement.entries.length,
        paramsVersion: audit.params.chain.version,
      }
      if (audit.params.difference !== undefined)
        throw paramsMismatch(
          audit,
          'The posted root was not computed with the network’s parameters: report it to the verifiers so they revoke it within the dispute window',
        )
      if (audit.burns.difference !== undefined)
        throw new VerifierError(
          'BURNS_MISMATCH',
          `epoch ${epoch}: the bundle's payment fees are not the chain's (${audit.burns.difference})`,
          {
            hint: 'The posted root caps compute rewards with fees nobody burned: report it to the verifiers so they revoke it within the dispute window',
            details: { ...summary, difference: audit.burns.difference },
          },
        )
      if (!audit.matches)
        throw new VerifierError(
          'ROOT_MISMATCH',
          `epoch ${epoch}: the bundle settles to ${audit.settlement.root}, the chain holds ${audit.posted.root}`,
          {
            hint: 'The posted root is wrong: report it to the verifiers so they revoke it within the dispute window',
            details: summary,
          },
        )
      out.json({ ok: true, ...summary })
      out.info(`epoch ${epoch}: root ${audit.posted.root} recomputed from bundle ${audit.cid}: equal`)
      out.info(
        `  ${summary.observations} signed observations checked, ${summary.accounts} accounts, total ${mesh(audit.settlement.totalCumulative)}`,
      )
      out.info(
        `  reward parameters: version ${summary.paramsVersion}, as NetworkParams holds for epoch ${epoch}`,
      )
    } finally {
      await auditor.close()
    }
  })
  return rewards
}

function parsePositiveIntOrZero(value: string): number {
  if (!/^\d{1,9}$/.test(value))
    throw new InvalidArgumentError(`--epoch must be a whole number, got "${value}"`)
  return Number(value)
}
