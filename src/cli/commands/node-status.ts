import type { Command } from 'commander'
import { formatUnits } from 'viem'
import { connectChain, getNode, nodeIdOf, servicesOf } from '../../chain/index.js'
import { peerIdBytes } from '../../mesh/peer-key.js'
import type { NodeStatus } from '../../node/node-agent.js'
import { DEFAULT_NODE_DIR, loadNodeDir } from '../../node/node-dir.js'
import { globalOptions } from '../context.js'
import { createOutput } from '../output.js'

/** `meshwork node status`: what the running node sees, and what the chain holds for it. */
export function nodeStatusCommand(node: Command): void {
  node
    .command('status')
    .description('show peer id, addresses, peers, known ads, stake and registration, recent errors')
    .option('--dir <dir>', 'node directory', DEFAULT_NODE_DIR)
    .action(async (opts: { dir: string }, cmd: Command) => {
      const out = createOutput(globalOptions(cmd))
      const { identity, config, network } = loadNodeDir(opts.dir)
      let live: NodeStatus | undefined
      try {
        const res = await fetch(`http://${config.api.listen}/status`, { signal: AbortSignal.timeout(2_000) })
        if (res.ok) live = (await res.json()) as NodeStatus
      } catch {
        live = undefined
      }
      const nodeId = nodeIdOf(peerIdBytes(identity.peerId))
      let registration: {
        registered: boolean
        operator?: string
        stake?: string
        unbonding?: string
        services?: string[]
      } = {
        registered: false,
      }
      let chainError: string | undefined
      try {
        const reader = await connectChain({
          chainId: network.chainId,
          contracts: network.contracts,
          rpc: config.chain.rpc || network.rpcUrl,
        })
        const record = await getNode(reader, nodeId)
        registration =
          record.operator === '0x0000000000000000000000000000000000000000'
            ? { registered: false }
            : {
                registered: true,
                operator: record.operator,
                stake: formatUnits(record.stake, 18),
                unbonding: formatUnits(record.unbonding, 18),
                services: servicesOf(record.services),
              }
      } catch (err) {
        chainError = (err as Error).message
      }
      out.json({
        peerId: identity.peerId,
        nodeId,
        running: live !== undefined,
        live,
        registration,
        chainError,
      })
      out.info(`node ${identity.peerId} — ${live ? 'running' : 'not running'}`)
      if (live) {
        out.info(`  addresses  ${live.addresses.join(' ') || '(none)'}`)
        out.info(`  peers      ${live.peers.length}`)
        out.info(`  ads        ${live.ads.length} known, own sequence ${live.adSeq ?? '-'}`)
      }
      if (chainError) out.info(`  chain      unreachable: ${chainError}`)
      else if (registration.registered) {
        out.info(
          `  stake      ${registration.stake} MESH (unbonding ${registration.unbonding}), services ${registration.services?.join(', ') || 'none'}`,
        )
      } else out.info('  stake      not registered: run `meshwork node register --stake AMOUNT`')
      for (const e of live?.errors ?? [])
        out.info(`  error      ${new Date(e.at).toISOString()} ${e.code}: ${e.message}`)
    })
}
