/**
 * Canonical JSON: object keys sorted, no whitespace, only finite numbers. Two parties that hold the
 * same value produce the same bytes, so signatures over it verify everywhere.
 *
 * @throws TypeError on values JSON cannot hold exactly (undefined, bigint, NaN, functions, cycles).
 */
export function canonicalJson(value: unknown): string {
  return write(value, new Set())
}

function write(value: unknown, seen: Set<object>): string {
  if (value === null) return 'null'
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value)
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonical JSON holds finite numbers only')
      return JSON.stringify(value)
    case 'object': {
      if (seen.has(value)) throw new TypeError('canonical JSON cannot hold a cycle')
      seen.add(value)
      const out = Array.isArray(value)
        ? `[${value.map((v) => write(v, seen)).join(',')}]`
        : `{${Object.keys(value)
            .sort()
            .map((k) => {
              const v = (value as Record<string, unknown>)[k]
              if (v === undefined) throw new TypeError(`canonical JSON cannot hold undefined (key ${k})`)
              return `${JSON.stringify(k)}:${write(v, seen)}`
            })
            .join(',')}}`
      seen.delete(value)
      return out
    }
    default:
      throw new TypeError(`canonical JSON cannot hold a ${typeof value}`)
  }
}
