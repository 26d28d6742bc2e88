export * from './errors.js'
export * from './network-port.js'
export * from './sim-network.js'
