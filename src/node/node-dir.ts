import { homedir } from 'node:os'
import { isAbsolute, join } from 'node:path'
import { type NetworkFile, readNetworkFile } from '../chain/network-file.js'
import { loadNodeConfig, type NodeConfig } from './config.js'
import { loadNodeIdentity, NODE_FILES, type NodeIdentity } from './identity.js'

/** Where a node keeps its files unless --dir says otherwise. */
export const DEFAULT_NODE_DIR = join(homedir(), '.meshwork', 'node')

/** A node directory, loaded: config, identity and network file. */
export interface LoadedNodeDir {
  dir: string
  config: Readonly<NodeConfig>
  identity: NodeIdentity
  network: NetworkFile
  networkPath: string
}

/** Loads what every `meshwork node …` command needs, with one-line errors that name the fix. */
export function loadNodeDir(dir: string, env: NodeJS.ProcessEnv = process.env): LoadedNodeDir {
  const config = loadNodeConfig(join(dir, NODE_FILES.config), env)
  const identity = loadNodeIdentity(dir, config.node.payoutAddress)
  const networkPath = isAbsolute(config.chain.network)
    ? config.chain.network
    : join(dir, config.chain.network)
  return { dir, config, identity, network: readNetworkFile(networkPath), networkPath }
}
