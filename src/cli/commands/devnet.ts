import { existsSync, mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Command } from 'commander'
import { formatUnits } from 'viem'
import {
  connectChain,
  deployNetwork,
  devAccounts,
  type NetworkFile,
  readNetworkFile,
  startDevChain,
  writeNetworkFile,
} from '../../chain/index.js'
import { InvalidArgumentError } from '../../core/errors.js'
import { createLogger } from '../../core/logger.js'
import { createEvmVerifierChain } from '../../verifier/chain-port.js'
import { globalOptions } from '../context.js'
import {
  BUILDER_KEY_FILE,
  fundBuilder,
  type MemberProcess,
  memberDirs,
  registerMembers,
  startMember,
} from '../devnet-members.js'
import { createOutput } from '../output.js'
import { parsePort, parsePositiveInt } from '../parse.js'
import { waitForShutdown } from '../signals.js'

interface Options {
  port: string
  dir: string
  epochSeconds: string
  nodes: string
  verifiers: string
  resume?: boolean
}

/** A block a second, as a live chain has: epochs need blocks to start and end on. */
const BLOCK_INTERVAL_MS = 1_000

function parseCount(value: string, flag: string, max: number): number {
  if (!/^\d{1,3}$/.test(value) || Number(value) > max)
    throw new InvalidArgumentError(`${flag} must be a whole number from 0 to ${max}, got "${value}"`)
  return Number(value)
}

/**
 * `meshwork devnet`: the whole local network in one command: the embedded chain (a block a second),
 * the contracts, and `--nodes` nodes and `--verifiers` verifiers, each registered with stake and run
 * as its own process, so that epochs close and roots are posted. Ctrl-C stops everything.
 */
export function devnetCommand(program: Command): void {
  program
    .command('devnet')
    .description('start a local Meshwork network: chain, contracts, nodes and verifiers (Ctrl-C stops it)')
    .option('--port <port>', 'JSON-RPC port of the chain', '8545')
    .option(
      '--dir <dir>',
      'directory for the chain state, network.json, nodes and verifiers',
      '.meshwork/devnet',
    )
    .option('--epoch-seconds <n>', 'epoch length in seconds', '15')
    .option('--nodes <n>', 'nodes to run', '6')
    .option('--verifiers <n>', 'verifiers to run (quorum 2, or 1 with a single verifier)', '3')
    .option('--resume', 'continue from the state in --dir instead of starting fresh')
    .action(async (opts: Options, cmd: Command) => {
      const g = globalOptions(cmd)
      const out = createOutput(g)
      const port = parsePort(opts.port)
      const epochDuration = parsePositiveInt(opts.epochSeconds, '--epoch-seconds', 86_400)
      const counts = {
        nodes: parseCount(opts.nodes, '--nodes', 50),
        verifiers: parseCount(opts.verifiers, '--verifiers', 21),
      }
      const chainDir = join(opts.dir, 'chain')
      const networkPath = join(opts.dir, 'network.json')
      if (!opts.resume && (existsSync(chainDir) || existsSync(networkPath))) {
        out.step(`starting fresh: removing the previous devnet in ${opts.dir} (--resume continues it)`)
        for (const part of [chainDir, networkPath, join(opts.dir, 'nodes'), join(opts.dir, 'verifiers')])
          rmSync(part, { recursive: true, force: true })
      }
      mkdirSync(opts.dir, { recursive: true })
      const logger = createLogger({ level: g.verbose ? 'debug' : 'warn' })
      const steps = 5
      // Listening from the start: a Ctrl-C while starting up stops everything once started.
      const shutdown = waitForShutdown()
      let stopping = false

      out.step(opts.resume ? `resuming the chain from ${chainDir}` : 'starting the embedded chain', 1, steps)
      const chain = await startDevChain({ port, stateDir: chainDir, logger })
      const members: MemberProcess[] = []
      let miner: ReturnType<typeof setInterval> | undefined
      let watcher: ReturnType<typeof setInterval> | undefined
      try {
        const url = chain.url as string
        let network: NetworkFile | undefined
        if (opts.resume && existsSync(networkPath)) {
          network = readNetworkFile(networkPath)
          await connectChain({ chainId: network.chainId, contracts: network.contracts, rpc: chain.provider })
          // The RPC port and the members' mesh addresses change with each start.
          network = { ...network, rpcUrl: url, bootstrap: [] }
          writeNetworkFile(networkPath, network, { force: true })
          out.step(`reusing the contracts in ${networkPath}`, 2, steps)
        } else {
          out.step('deploying the contracts', 2, steps)
          network = await deployNetwork({
            rpcUrl: url,
            provider: chain.provider,
            privateKey: (devAccounts(1)[0] as { privateKey: `0x${string}` }).privateKey,
            preset: 'devnet',
            overrides: { epochDuration, quorum: counts.verifiers === 1 ? 1 : 2 },
            onStep: (step) => logger.debug({ step }, 'deploy step'),
          })
          writeNetworkFile(networkPath, network, { force: true })
          await fundBuilder(join(opts.dir, BUILDER_KEY_FILE), chain.provider, network)
        }
        const net = network
        miner = setInterval(
          () => void chain.provider.request({ method: 'evm_mine', params: [] }).catch(() => undefined),
          BLOCK_INTERVAL_MS,
        )

        out.step(`preparing ${counts.nodes} nodes and ${counts.verifiers} verifiers`, 3, steps)
        const { members: dirs, created } = await memberDirs(opts.dir, counts, networkPath)
        await registerMembers(created, { provider: chain.provider, network: net }, (text) =>
          logger.debug({ text }, 'register'),
        )

        out.step('starting them, each in its own process', 4, steps)
        // Verifiers' timing follows the epoch: a leader that is down is replaced within half an epoch.
        const verifierEnv = {
          MESHWORK_VERIFIER__GRACE_SECONDS: '1',
          MESHWORK_VERIFIER__LEADER_TIMEOUT_SECONDS: String(Math.max(2, Math.floor(epochDuration / 2))),
          MESHWORK_VERIFIER__POLL_MS: '500',
          MESHWORK_VERIFIER__CHALLENGE_TIMEOUT_MS: '1500',
        }
        // Nodes redeem builders' vouchers once an epoch.
        const nodeEnv = { MESHWORK_COMPUTE__REDEEM_SECONDS: String(epochDuration) }
        // The first member is everyone's bootstrap peer.
        const [first, ...rest] = dirs
        let bootstrap: string[] = []
        if (first !== undefined) {
          const started = startMember(first, first.kind === 'verifier' ? verifierEnv : nodeEnv)
          members.push(started)
          const { addresses } = await started.ready
          bootstrap = addresses.filter((a) => a.includes('/tcp/') && !a.includes('/ws'))
        }
        // Tools (`meshwork rewards …`) join the mesh through the network file's bootstrap peers.
        writeNetworkFile(networkPath, { ...net, bootstrap }, { force: true })
        const env = { MESHWORK_MESH__BOOTSTRAP: JSON.stringify(bootstrap) }
        for (const m of rest)
          members.push(
            startMember(m, m.kind === 'verifier' ? { ...env, ...verifierEnv } : { ...env, ...nodeEnv }),
          )
        let up = 0
        await Promise.all(
          members.map(async (m) => {
            await m.ready
            up++
            out.step(`${m.name} running (${up}/${members.length})`, 4, steps)
          }),
        )
        out.step(`wrote ${networkPath}`, 5, steps)

        const ready = await Promise.all(members.map(async (m) => ({ name: m.name, ...(await m.ready) })))
        out.json({
          ready: true,
          rpcUrl: url,
          chainId: net.chainId,
          networkFile: networkPath,
          contracts: net.contracts,
          members: ready,
        })
        out.info(`Meshwork devnet ready: ${url}`)
        out.info(
          `  chain ${net.chainId}, epochs of ${net.parameters.epochDuration} s, network file ${networkPath}`,
        )
        for (const m of ready) out.info(`  ${m.name.padEnd(12)} ${m.ops}/status`)
        out.info(
          `  try: npx meshwork job run FILE.js --input JSON --network ${networkPath} --key ${join(opts.dir, BUILDER_KEY_FILE)}`,
        )
        out.info(
          `  try: npx meshwork rewards show --network ${networkPath} --bundle-url ${ready.find((m) => m.name.startsWith('verifier'))?.ops ?? 'URL'}`,
        )

        // The live summary: a line per posted root, and members that stop.
        for (const m of members)
          m.child.once('exit', (code, signal) => {
            if (!stopping) out.info(`${m.name} stopped (${signal ?? code})`)
          })
        const reader = createEvmVerifierChain(
          await connectChain({ chainId: net.chainId, contracts: net.contracts, rpc: chain.provider }),
          { deployBlock: BigInt(net.deployBlock) },
        )
        const seen = new Set<number>()
        watcher = setInterval(() => {
          void reader
            .postedRoots()
            .then((roots) => {
              for (const [epoch, r] of [...roots].sort((a, b) => a[0] - b[0])) {
                if (seen.has(epoch)) continue
                seen.add(epoch)
                out.info(
                  `epoch ${epoch} closed: root ${r.root.slice(0, 10)}… posted, ${formatUnits(r.totalCumulative, 18)} MESH earned in total`,
                )
              }
            })
            .catch(() => undefined)
        }, 1_000)
        const signal = await shutdown
        out.step(`stopping (${signal})`)
      } finally {
        stopping = true
        clearInterval(watcher)
        clearInterval(miner)
        await Promise.all(members.map((m) => m.stop()))
        await chain.stop()
      }
    })
}
