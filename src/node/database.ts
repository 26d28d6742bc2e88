import Database from 'better-sqlite3'
import type { ChannelBook, PaymentStore } from '../compute/payments.js'
import { InvalidArgumentError } from '../core/errors.js'

/** One schema change, applied once, in order, inside a transaction. */
export interface Migration {
  version: number
  description: string
  sql: string
}

/** The node's migrations. Append only: never edit one that has shipped. */
export const NODE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'wire sequence reservations and recent errors',
    sql: `
      CREATE TABLE sequences (type TEXT PRIMARY KEY, reserved INTEGER NOT NULL) STRICT;
      CREATE TABLE errors (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        code TEXT NOT NULL,
        message TEXT NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 2,
    description: 'payment channels: bills, latest vouchers, redeemed amounts',
    sql: `
      CREATE TABLE pay_channels (
        channel TEXT PRIMARY KEY,
        builder TEXT NOT NULL,
        billed TEXT NOT NULL,
        paid TEXT NOT NULL,
        voucher TEXT,
        redeemed TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE pay_bills (
        channel TEXT NOT NULL,
        job_id TEXT NOT NULL,
        amount TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (channel, job_id)
      ) STRICT;
    `,
  },
]

/** Sequence numbers are reserved on disk this many at a time, so most messages write nothing. */
const SEQUENCE_BLOCK = 1_000
/** Recent errors kept for `meshwork node status`. */
const MAX_ERRORS = 100

/** The node's SQLite state (WAL mode): what must survive a restart or a kill -9. */
export interface NodeDatabase {
  /** The next wire sequence number for a message type; never repeats, across restarts too. */
  nextSeq(type: string): number
  /** Records an error for `node status` (the newest 100 are kept). */
  recordError(at: number, code: string, message: string): void
  recentErrors(limit?: number): { at: number; code: string; message: string }[]
  /** The compute service's payment books (bills, vouchers, redeems). */
  readonly payments: PaymentStore
  /** The applied schema version. */
  readonly version: number
  close(): void
}

/** Applies pending migrations in order; refuses a database newer than this code. */
export function migrate(db: Database.Database, migrations: readonly Migration[]): number {
  db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT',
  )
  const current =
    (db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0
  const latest = migrations.at(-1)?.version ?? 0
  if (current > latest) {
    throw new InvalidArgumentError(
      `the database is at schema version ${current}, newer than this software (${latest})`,
      {
        hint: 'Upgrade meshwork, or point --dir at another node directory',
      },
    )
  }
  for (const m of migrations) {
    if (m.version <= current) continue
    db.transaction(() => {
      db.exec(m.sql)
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(
        m.version,
        Date.now(),
      )
    })()
  }
  return latest
}

/**
 * Hands out wire sequence numbers per message type from a database with a `sequences` table
 * (`type TEXT PRIMARY KEY, reserved INTEGER`): numbers never repeat, across restarts and crashes
 * too, and only one in {@link SEQUENCE_BLOCK} writes to disk.
 */
export function sequenceAllocator(db: Database.Database): (type: string) => number {
  const getReserved = db.prepare('SELECT reserved FROM sequences WHERE type = ?')
  const setReserved = db.prepare(
    'INSERT INTO sequences (type, reserved) VALUES (?, ?) ON CONFLICT(type) DO UPDATE SET reserved = excluded.reserved',
  )
  // In memory: the next number to hand out and the reserved ceiling, per type.
  const sequences = new Map<string, { next: number; reserved: number }>()
  return (type) => {
    let s = sequences.get(type)
    if (!s) {
      // Start after everything reserved before: numbers handed out before a crash are never reused.
      const reserved = (getReserved.get(type) as { reserved: number } | undefined)?.reserved ?? 0
      s = { next: reserved + 1, reserved }
      sequences.set(type, s)
    }
    if (s.next > s.reserved) {
      s.reserved = s.next + SEQUENCE_BLOCK - 1
      setReserved.run(type, s.reserved)
    }
    return s.next++
  }
}

/** Opens (creating if needed) the node database at `path` and brings its schema up to date. */
export function openNodeDatabase(path: string): NodeDatabase {
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.pragma('foreign_keys = ON')
  const version = migrate(db, NODE_MIGRATIONS)

  const insertError = db.prepare('INSERT INTO errors (at, code, message) VALUES (?, ?, ?)')
  const trimErrors = db.prepare('DELETE FROM errors WHERE id <= (SELECT MAX(id) FROM errors) - ?')
  const selectErrors = db.prepare('SELECT at, code, message FROM errors ORDER BY id DESC LIMIT ?')

  const nextSeq = sequenceAllocator(db)

  return {
    version,
    nextSeq,
    payments: sqlitePaymentStore(db),
    recordError(at, code, message) {
      insertError.run(at, code, message.slice(0, 500))
      trimErrors.run(MAX_ERRORS)
    },
    recentErrors(limit = 20) {
      return selectErrors.all(Math.min(limit, MAX_ERRORS)) as { at: number; code: string; message: string }[]
    },
    close: () => db.close(),
  }
}

type BookRow = {
  channel: string
  builder: string
  billed: string
  paid: string
  voucher: string | null
  redeemed: string
}

const bookOf = (r: BookRow): ChannelBook => ({
  builder: r.builder,
  billed: BigInt(r.billed),
  paid: BigInt(r.paid),
  voucher: r.voucher as ChannelBook['voucher'],
  redeemed: BigInt(r.redeemed),
})

/** {@link PaymentStore} on the node database (amounts as decimal text: SQLite has no 256-bit integers). */
function sqlitePaymentStore(db: Database.Database): PaymentStore {
  const select = db.prepare('SELECT * FROM pay_channels WHERE channel = ?')
  const insertBill = db.prepare(
    'INSERT OR IGNORE INTO pay_bills (channel, job_id, amount, at) VALUES (?, ?, ?, ?)',
  )
  const upsert = db.prepare(
    `INSERT INTO pay_channels (channel, builder, billed, paid, voucher, redeemed, updated_at)
     VALUES (@channel, @builder, @billed, @paid, @voucher, @redeemed, @updated_at)
     ON CONFLICT(channel) DO UPDATE SET builder = excluded.builder, billed = excluded.billed,
       paid = excluded.paid, voucher = excluded.voucher, redeemed = excluded.redeemed, updated_at = excluded.updated_at`,
  )
  const open = db.prepare('SELECT * FROM pay_channels WHERE voucher IS NOT NULL')
  const get = (channel: bigint) => {
    const row = select.get(channel.toString()) as BookRow | undefined
    return row && bookOf(row)
  }
  const save = (channel: bigint, b: ChannelBook, at: number) =>
    upsert.run({
      channel: channel.toString(),
      builder: b.builder,
      billed: b.billed.toString(),
      paid: b.paid.toString(),
      voucher: b.voucher,
      redeemed: b.redeemed.toString(),
      updated_at: at,
    })
  const empty = (builder: string): ChannelBook => ({
    builder,
    billed: 0n,
    paid: 0n,
    voucher: null,
    redeemed: 0n,
  })
  return {
    get,
    bill: db.transaction((channel: bigint, builder: string, jobId: string, amount: bigint, at: number) => {
      if (insertBill.run(channel.toString(), jobId, amount.toString(), at).changes === 0) return false
      const b = get(channel) ?? empty(builder)
      save(channel, { ...b, billed: b.billed + amount }, at)
      return true
    }),
    voucher: db.transaction((channel: bigint, cumulative: bigint, sig: `0x${string}`, at: number) => {
      const b = get(channel) ?? empty('')
      if (cumulative > b.paid) save(channel, { ...b, paid: cumulative, voucher: sig }, at)
    }),
    redeemed: db.transaction((channel: bigint, cumulative: bigint, at: number) => {
      const b = get(channel)
      if (b && cumulative > b.redeemed) save(channel, { ...b, redeemed: cumulative }, at)
    }),
    unredeemed: () =>
      (open.all() as BookRow[])
        .map((r) => ({ channel: BigInt(r.channel), book: bookOf(r) }))
        .filter(({ book }) => book.paid > book.redeemed),
  }
}
