import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { migrate, NODE_MIGRATIONS, openNodeDatabase } from './database.js'

const fresh = () => join(mkdtempSync(join(tmpdir(), 'mw-db-')), 'node.db')

describe('node database', () => {
  it('never hands out a sequence number twice, across reopen and without a clean close', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 2_500 }), { minLength: 1, maxLength: 4 }), (runs) => {
        const path = fresh()
        const seen: number[] = []
        for (const count of runs) {
          // Each run is a process lifetime that ends without close(), like a kill -9.
          const db = openNodeDatabase(path)
          for (let i = 0; i < count; i++) seen.push(db.nextSeq('ad'))
        }
        for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1] as number)
        // Types count separately.
        expect(openNodeDatabase(path).nextSeq('challenge')).toBe(1)
      }),
      { numRuns: 20 },
    )
  })

  it('keeps the newest 100 errors', () => {
    const db = openNodeDatabase(fresh())
    for (let i = 0; i < 130; i++) db.recordError(i, 'CODE', `error ${i}`)
    const recent = db.recentErrors(100)
    expect(recent).toHaveLength(100)
    expect(recent[0]).toEqual({ at: 129, code: 'CODE', message: 'error 129' })
    expect(recent.at(-1)?.message).toBe('error 30')
    db.close()
  })

  it('migrates once, and refuses a database from newer software', () => {
    const path = fresh()
    openNodeDatabase(path).close()
    const raw = new Database(path)
    expect(migrate(raw, NODE_MIGRATIONS)).toBe(NODE_MIGRATIONS.at(-1)?.version)
    raw.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(99, 0)
    raw.close()
    expect(() => openNodeDatabase(path)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }))
  })
})
