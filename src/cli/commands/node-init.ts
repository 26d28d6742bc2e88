import { copyFileSync, existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Command } from 'commander'
import { isValidCell, latLngToCell } from 'h3-js'
import { readNetworkFile } from '../../chain/network-file.js'
import { InvalidArgumentError } from '../../core/errors.js'
import { initNodeDir } from '../../node/identity.js'
import { DEFAULT_NODE_DIR } from '../../node/node-dir.js'
import { globalOptions } from '../context.js'
import { createOutput } from '../output.js'
import { parseAddress } from '../parse.js'

interface Options {
  dir: string
  h3Cell?: string
  lat?: string
  lon?: string
  tier: string
  payoutAddress?: string
  network?: string
  mdns?: boolean
  apiListen: string
  listen?: string[]
}

/** The H3 resolution `--lat/--lon` are rounded to: about 5 km², a neighbourhood, never an address. */
export const NODE_CELL_RESOLUTION = 7

function cellOf(opts: Options): string {
  if (opts.h3Cell !== undefined) {
    if (!isValidCell(opts.h3Cell))
      throw new InvalidArgumentError(`--h3-cell ${opts.h3Cell} is not a valid H3 cell index`)
    return opts.h3Cell
  }
  if (opts.lat !== undefined && opts.lon !== undefined) {
    const lat = Number(opts.lat)
    const lon = Number(opts.lon)
    if (!Number.isFinite(lat) || Math.abs(lat) > 90 || !Number.isFinite(lon) || Math.abs(lon) > 180) {
      throw new InvalidArgumentError('--lat must be within ±90 and --lon within ±180 degrees')
    }
    return latLngToCell(lat, lon, NODE_CELL_RESOLUTION)
  }
  throw new InvalidArgumentError('where is this node?', {
    hint: 'Pass --lat LAT --lon LON (rounded to an H3 cell of about 5 km²) or --h3-cell CELL',
  })
}

/** `meshwork node init`: identity, config and state for a new node. */
export function nodeInitCommand(node: Command): void {
  node
    .command('init')
    .description('create a node: libp2p identity, operator key, commented config and SQLite state')
    .option('--dir <dir>', 'node directory', DEFAULT_NODE_DIR)
    .option('--lat <degrees>', 'latitude (rounded to an H3 cell of resolution 7)')
    .option('--lon <degrees>', 'longitude')
    .option('--h3-cell <cell>', 'H3 cell index instead of --lat/--lon')
    .option('--tier <tier>', 'edge or cloud', 'edge')
    .option(
      '--payout-address <address>',
      'pay rewards to this existing address instead of a new operator key',
    )
    .option('--network <file>', 'copy this network file into the node directory')
    .option('--mdns', 'find peers on the local network')
    .option('--api-listen <host:port>', 'metrics, health and status endpoint', '127.0.0.1:9464')
    .option('--listen <multiaddr...>', 'mesh listen addresses (default TCP 4001 and WebSockets 4002)')
    .action(async (opts: Options, cmd: Command) => {
      const out = createOutput(globalOptions(cmd))
      if (opts.tier !== 'edge' && opts.tier !== 'cloud') {
        throw new InvalidArgumentError(`--tier must be edge or cloud, got "${opts.tier}"`)
      }
      const h3Cell = cellOf(opts)
      const payoutAddress = opts.payoutAddress
        ? parseAddress(opts.payoutAddress, '--payout-address')
        : undefined
      if (opts.network) readNetworkFile(opts.network)
      const dir = resolve(opts.dir)
      const identity = await initNodeDir({
        dir,
        h3Cell,
        tier: opts.tier,
        mdns: opts.mdns === true,
        apiListen: opts.apiListen,
        ...(payoutAddress ? { payoutAddress } : {}),
        ...(opts.listen ? { listen: opts.listen } : {}),
      })
      if (opts.network) copyFileSync(opts.network, join(dir, 'network.json'))
      out.json({ dir, peerId: identity.peerId, operator: identity.operatorAddress, h3Cell })
      out.info(`Created node ${identity.peerId} in ${dir}`)
      out.info(
        `  operator  ${identity.operatorAddress}${identity.operatorKey ? ' (key in operator.key)' : ' (payout address)'}`,
      )
      out.info(`  cell      ${h3Cell}`)
      if (!opts.network && !existsSync(join(dir, 'network.json'))) {
        out.info(`  next: copy the network file to ${join(dir, 'network.json')} (or pass --network FILE)`)
      }
      out.info(
        `  next: npx meshwork node register --dir ${dir} --stake 1000, then npx meshwork node start --dir ${dir}`,
      )
    })
}
