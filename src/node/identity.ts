import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { InvalidArgumentError } from '../core/errors.js'
import { readSecretFile, writeSecretFile } from '../core/secret-file.js'
import { renderNodeConfig } from './config.js'
import { openNodeDatabase } from './database.js'

/** File names inside a node directory. */
export const NODE_FILES = {
  peerKey: 'peer.key',
  operatorKey: 'operator.key',
  config: 'config.toml',
  database: 'node.db',
} as const

/** A node's identity: its libp2p key (the peer id) and, unless it pays out elsewhere, an operator key. */
export interface NodeIdentity {
  peerKey: Ed25519PrivateKey
  peerId: string
  /** The operator's EVM key, when this directory holds one. */
  operatorKey: Hex | undefined
  /** Where rewards go: the configured payout address, else the operator key's address. */
  operatorAddress: `0x${string}` | undefined
}

/** What `meshwork node init` creates. */
export interface InitNodeDirInit {
  dir: string
  h3Cell: string
  tier?: 'edge' | 'cloud'
  /** Pay rewards to this existing address instead of creating an operator key. */
  payoutAddress?: `0x${string}`
  mdns?: boolean
  apiListen?: string
  listen?: string[]
}

/**
 * Creates a node directory: the libp2p identity (peer.key), an operator EVM key (operator.key)
 * unless a payout address is given, a commented config.toml and the SQLite database. Refuses a
 * directory that already holds an identity, so that a node never loses its peer id by accident.
 */
export async function initNodeDir(init: InitNodeDirInit): Promise<NodeIdentity> {
  const peerPath = join(init.dir, NODE_FILES.peerKey)
  if (existsSync(peerPath)) {
    throw new InvalidArgumentError(`${init.dir} already holds a node identity`, {
      hint: 'Start it with `meshwork node start`, or pass --dir with a new directory',
    })
  }
  mkdirSync(init.dir, { recursive: true, mode: 0o700 })
  const peerKey = await generateKeyPair('Ed25519')
  writeSecretFile(peerPath, privateKeyToProtobuf(peerKey))
  let operatorKey: Hex | undefined
  if (!init.payoutAddress) {
    operatorKey = generatePrivateKey()
    writeSecretFile(join(init.dir, NODE_FILES.operatorKey), `${operatorKey}\n`)
  }
  writeFileSync(
    join(init.dir, NODE_FILES.config),
    renderNodeConfig({
      h3Cell: init.h3Cell,
      tier: init.tier ?? 'edge',
      payoutAddress: init.payoutAddress ?? '',
      mdns: init.mdns ?? false,
      apiListen: init.apiListen ?? '127.0.0.1:9464',
      listen: init.listen ?? ['/ip4/0.0.0.0/tcp/4001', '/ip4/0.0.0.0/tcp/4002/ws'],
    }),
    { flag: 'wx' },
  )
  openNodeDatabase(join(init.dir, NODE_FILES.database)).close()
  return {
    peerKey,
    peerId: peerIdFromPrivateKey(peerKey).toString(),
    operatorKey,
    operatorAddress:
      init.payoutAddress ?? (operatorKey ? privateKeyToAccount(operatorKey).address : undefined),
  }
}

/** Reads a libp2p Ed25519 key file (owner-only), with a one-line error for anything else. */
export function readPeerKeyFile(path: string): Ed25519PrivateKey {
  try {
    const key = privateKeyFromProtobuf(readSecretFile(path))
    if (key.type !== 'Ed25519') throw new Error(`a ${key.type} key`)
    return key
  } catch (err) {
    if ((err as { code?: string }).code === 'INVALID_ARGUMENT') throw err
    throw new InvalidArgumentError(`${path} is not an Ed25519 libp2p key`, { cause: err })
  }
}

/** Reads an EVM key file (0x + 64 hex, owner-only). */
export function readOperatorKeyFile(path: string): Hex {
  const text = readSecretFile(path).toString('utf8').trim()
  if (!/^0x[0-9a-fA-F]{64}$/.test(text))
    throw new InvalidArgumentError(`${path} does not hold a 32-byte hex key`)
  return text as Hex
}

/** Loads the identity of a node directory made by {@link initNodeDir}. */
export function loadNodeIdentity(dir: string, payoutAddress = ''): NodeIdentity {
  const peerPath = join(dir, NODE_FILES.peerKey)
  if (!existsSync(peerPath)) {
    throw new InvalidArgumentError(`${dir} holds no node identity`, {
      hint: 'Run `meshwork node init --dir DIR` first',
    })
  }
  const peerKey = readPeerKeyFile(peerPath)
  const operatorPath = join(dir, NODE_FILES.operatorKey)
  const operatorKey = existsSync(operatorPath) ? readOperatorKeyFile(operatorPath) : undefined
  const operatorAddress =
    payoutAddress !== ''
      ? (payoutAddress as `0x${string}`)
      : operatorKey
        ? privateKeyToAccount(operatorKey).address
        : undefined
  return { peerKey, peerId: peerIdFromPrivateKey(peerKey).toString(), operatorKey, operatorAddress }
}
