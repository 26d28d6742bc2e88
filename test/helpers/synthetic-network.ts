/**
 * A network file for a chain that is never contacted: node processes start without one, so tests
 * and benchmarks that only need the mesh write this instead of deploying.
 */
export function syntheticNetworkFile(options: {
  name: string
  registry: string
  bootstrap: string[]
}): unknown {
  const addr = (n: number) => `0x${n.toString(16).padStart(40, '0')}`
  return {
    version: 1,
    name: options.name,
    chainId: 31337,
    rpcUrl: 'http://127.0.0.1:8545',
    deployBlock: 0,
    deployer: addr(1),
    contracts: {
      MeshToken: addr(0xa1),
      NodeRegistry: options.registry,
      EpochRewards: addr(0xa3),
      Payments: addr(0xa4),
      MeshTimelock: addr(0xa5),
      MeshGovernor: addr(0xa6),
      NetworkParams: addr(0xa7),
    },
    parameters: {
      tokenName: 'Meshwork',
      tokenSymbol: 'MESH',
      maxSupply: '1000000000000000000000000000',
      genesisAmount: '0',
      treasury: addr(1),
      genesisTime: 0,
      epochDuration: 3_600,
      initialEmission: '1000',
      halvingInterval: 8_760,
      disputeWindow: 1,
      minNodeStake: '1',
      minVerifierStake: '1',
      unbondingPeriod: 0,
      quorum: 1,
      maxVerifiers: 8,
      closeTimeout: 0,
      votingDelay: 1,
      votingPeriod: 60,
      proposalThreshold: '0',
      quorumPercent: 4,
      timelockDelay: 0,
    },
    bootstrap: options.bootstrap,
  }
}
