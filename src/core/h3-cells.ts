import { cellToParent, getResolution, isValidCell } from 'h3-js'

/**
 * The parent at `resolution` of an H3 cell of that resolution or finer (itself at that
 * resolution); undefined for a missing, invalid or coarser cell. The sensors publish and the reward
 * function pays under such coarse cells.
 */
export function parentCellAt(cell: string | undefined, resolution: number): string | undefined {
  if (cell === undefined || !isValidCell(cell)) return undefined
  const own = getResolution(cell)
  if (own < resolution) return undefined
  return own === resolution ? cell : cellToParent(cell, resolution)
}
