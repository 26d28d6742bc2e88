import type { Command } from 'commander'
import { formatUnits } from 'viem'
import {
  connectChain,
  getNetworkParams,
  getNode,
  makerPeerIdOf,
  nodeIdOf,
  servicesOf,
} from '../../chain/index.js'
import { peerIdBytes } from '../../mesh/peer-key.js'
import type { NodeStatus } from '../../node/node-agent.js'
import { DEFAULT_NODE_DIR, loadNodeDir } from '../../node/node-dir.js'
import { globalOptions } from '../context.js'
import { createOutput } from '../output.js'
import { sensorListings } from './node-sensors.js'

/** A sensor as `meshwork node status` shows it: whose hardware it is, and whether that is paid. */
export interface SensorStatus {
  name: string
  device: string
  /** The maker its certificate names; null without a good certificate. */
  maker: string | null
  /**
   * Whether governance approves that maker in the current epoch (only certified hardware of an
   * approved maker is paid); null when there is no maker to ask about or the chain is unreachable.
   */
  approved: boolean | null
  /** What is wrong with its certificate, if anything. */
  certificateError?: string
}

/** `meshwork node status`: what the running node sees, and what the chain holds for it. */
export function nodeStatusCommand(node: Command): void {
  node
    .command('status')
    .description(
      'show peer id, addresses, peers, known ads, stake and registration, sensors and their makers, recent errors',
    )
    .option('--dir <dir>', 'node directory', DEFAULT_NODE_DIR)
    .action(async (opts: { dir: string }, cmd: Command) => {
      const out = createOutput(globalOptions(cmd))
      const { dir, identity, config, network } = loadNodeDir(opts.dir)
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
      let makers: ReadonlySet<string> | undefined
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
        // The approved makers in force (unknown, rather than a failed status, if they cannot be read).
        makers = await getNetworkParams(reader).then(
          (p) => new Set(p.makers.map(makerPeerIdOf)),
          () => undefined,
        )
      } catch (err) {
        chainError = (err as Error).message
      }
      // Sensors the node has started with (a sensor without a device key yet has nothing to show).
      const sensors: SensorStatus[] = (await sensorListings(dir, { makeKeys: false })).map((s) => {
        const c = s.certificate
        const maker = c !== null && 'maker' in c ? c.maker : null
        return {
          name: s.name,
          device: s.device,
          maker,
          approved: maker === null || makers === undefined ? null : makers.has(maker),
          ...(c !== null && 'error' in c ? { certificateError: c.error } : {}),
        }
      })
      out.json({
        peerId: identity.peerId,
        nodeId,
        running: live !== undefined,
        live,
        registration,
        sensors,
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
      for (const s of sensors) {
        const what =
          s.certificateError !== undefined
            ? `certificate refused (${s.certificateError}): not paid`
            : s.maker === null
              ? 'no maker certificate: not paid (see `meshwork node sensors`)'
              : s.approved === null
                ? `maker ${s.maker} (approval unknown: the chain's makers could not be read)`
                : s.approved
                  ? `maker ${s.maker}, approved`
                  : `maker ${s.maker} is not approved by governance: not paid`
        out.info(`  sensor     ${s.name}: ${what}`)
      }
      for (const e of live?.errors ?? [])
        out.info(`  error      ${new Date(e.at).toISOString()} ${e.code}: ${e.message}`)
    })
}
