/**
 * Bits of the `services` field a node registers in NodeRegistry and advertises on the mesh. A node
 * sets the bit of every service it offers.
 */
export const SERVICES = {
  compute: 1 << 0,
  inference: 1 << 1,
  storage: 1 << 2,
  relay: 1 << 3,
  sensor: 1 << 4,
} as const

export type ServiceName = keyof typeof SERVICES

/** The bitmask of a list of services. */
export function servicesMask(names: readonly ServiceName[]): number {
  return names.reduce((mask, n) => mask | SERVICES[n], 0)
}

/** The services a bitmask names (unknown bits are ignored). */
export function servicesOf(mask: number): ServiceName[] {
  return (Object.keys(SERVICES) as ServiceName[]).filter((n) => (mask & SERVICES[n]) !== 0)
}
