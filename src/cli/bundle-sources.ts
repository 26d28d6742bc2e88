import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import type { NetworkFile } from '../chain/network-file.js'
import type { Logger } from '../core/logger.js'
import { createMeshLibp2p, type MeshLibp2p } from '../mesh/create-libp2p.js'
import { createLibp2pPort } from '../mesh/libp2p-port.js'
import type { NetworkPort } from '../mesh/network-port.js'
import { type BundleSource, httpBundleSource, meshBundleSource } from '../verifier/audit.js'

/** Bundle sources for a command: HTTP first, then the mesh (joined only if HTTP did not serve). */
export interface CommandBundleSources {
  readonly sources: BundleSource[]
  close(): Promise<void>
}

/**
 * Where `meshwork rewards …` fetches bundles: each `--bundle-url` (a verifier's ops address) first,
 * then over the mesh from the network file's bootstrap peers and the active verifiers (`verifiers`,
 * peer ids). The mesh node is started on the first mesh fetch only, with a throwaway identity.
 */
export function commandBundleSources(init: {
  network: NetworkFile
  urls: readonly string[]
  verifiers: () => Promise<string[]>
  logger: Logger
}): CommandBundleSources {
  let mesh: Promise<{ libp2p: MeshLibp2p; port: NetworkPort; peers: string[] }> | undefined
  const joinMesh = () => {
    mesh ??= (async () => {
      const libp2p = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: [] })
      const port = createLibp2pPort(libp2p, { logger: init.logger })
      const peers: string[] = []
      for (const address of init.network.bootstrap) {
        try {
          const connection = await libp2p.dial(multiaddr(address), { signal: AbortSignal.timeout(5_000) })
          peers.push(connection.remotePeer.toString())
        } catch (err) {
          init.logger.debug({ err, address }, 'could not dial a bootstrap peer')
        }
      }
      for (const v of await init.verifiers()) if (!peers.includes(v)) peers.push(v)
      return { libp2p, port, peers }
    })()
    return mesh
  }
  const viaMesh: BundleSource = {
    name: 'the mesh',
    async fetch(cid) {
      const { port, peers } = await joinMesh()
      const failures: string[] = []
      for (const peer of peers) {
        try {
          return await meshBundleSource(port, peer).fetch(cid)
        } catch (err) {
          failures.push(`${peer}: ${(err as Error).message}`)
        }
      }
      throw new Error(peers.length === 0 ? 'no peers to ask' : failures.join('; '))
    },
  }
  return {
    sources: [...init.urls.map((u) => httpBundleSource(u)), viaMesh],
    async close() {
      if (mesh !== undefined) await (await mesh.catch(() => undefined))?.port.close()
    },
  }
}
