import Database from 'better-sqlite3'
import type { SignedEnvelope } from '../mesh/wire-codec.js'
import { type Migration, migrate, sequenceAllocator } from '../node/database.js'
import type {
  BandwidthObservationBody,
  ComputeObservationBody,
  SensorObservationBody,
  StorageObservationBody,
  UptimeObservationBody,
} from './observation.js'

/** The verifier's migrations. Append only: never edit one that has shipped. */
export const VERIFIER_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'challenges, observations, bundles, attestations, roots',
    sql: `
      CREATE TABLE sequences (type TEXT PRIMARY KEY, reserved INTEGER NOT NULL) STRICT;
      CREATE TABLE challenges (
        epoch INTEGER NOT NULL,
        node TEXT NOT NULL,
        slot INTEGER NOT NULL,
        at INTEGER NOT NULL,
        result TEXT NOT NULL,
        rtt_ms INTEGER,
        PRIMARY KEY (epoch, node, slot)
      ) STRICT;
      CREATE TABLE observations (
        epoch INTEGER NOT NULL,
        verifier TEXT NOT NULL,
        node TEXT NOT NULL,
        seq INTEGER NOT NULL,
        envelope TEXT NOT NULL,
        PRIMARY KEY (epoch, verifier, node)
      ) STRICT;
      CREATE TABLE bundles (
        cid TEXT PRIMARY KEY,
        epoch INTEGER NOT NULL,
        digest TEXT NOT NULL,
        root TEXT NOT NULL,
        total TEXT NOT NULL,
        bytes BLOB NOT NULL
      ) STRICT;
      CREATE INDEX bundles_by_epoch ON bundles (epoch);
      CREATE TABLE attestations (
        epoch INTEGER NOT NULL,
        cid TEXT NOT NULL,
        signer TEXT NOT NULL,
        signature TEXT NOT NULL,
        PRIMARY KEY (epoch, cid, signer)
      ) STRICT;
      CREATE TABLE roots (
        epoch INTEGER PRIMARY KEY,
        root TEXT NOT NULL,
        total TEXT NOT NULL,
        digest TEXT NOT NULL,
        block INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 2,
    description: 'compute: observations, checked work receipts, confirmed fraud, slash signatures',
    sql: `
      CREATE TABLE compute_observations (
        epoch INTEGER NOT NULL,
        verifier TEXT NOT NULL,
        node TEXT NOT NULL,
        seq INTEGER NOT NULL,
        envelope TEXT NOT NULL,
        PRIMARY KEY (epoch, verifier, node)
      ) STRICT;
      CREATE TABLE compute_work (
        node TEXT NOT NULL,
        job_id TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (node, job_id)
      ) STRICT;
      CREATE INDEX compute_work_by_epoch ON compute_work (epoch);
      CREATE TABLE compute_frauds (
        evidence_hash TEXT PRIMARY KEY,
        epoch INTEGER NOT NULL,
        node TEXT NOT NULL,
        job_id TEXT NOT NULL,
        slashed_tx TEXT
      ) STRICT;
      CREATE TABLE slash_signatures (
        evidence_hash TEXT NOT NULL,
        signer TEXT NOT NULL,
        signature TEXT NOT NULL,
        PRIMARY KEY (evidence_hash, signer)
      ) STRICT;
    `,
  },
  {
    version: 3,
    description: "storage: holders' receipts, chunk challenges, observations",
    sql: `
      CREATE TABLE storage_receipts (
        holder TEXT NOT NULL,
        cid TEXT NOT NULL,
        shard INTEGER NOT NULL,
        root TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        chunk_bytes INTEGER NOT NULL,
        from_epoch INTEGER NOT NULL,
        until_epoch INTEGER NOT NULL,
        PRIMARY KEY (holder, cid, shard)
      ) STRICT;
      CREATE TABLE storage_challenges (
        epoch INTEGER NOT NULL,
        holder TEXT NOT NULL,
        cid TEXT NOT NULL,
        shard INTEGER NOT NULL,
        slot INTEGER NOT NULL,
        passed INTEGER NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (epoch, holder, cid, shard, slot)
      ) STRICT;
      CREATE TABLE storage_observations (
        epoch INTEGER NOT NULL,
        verifier TEXT NOT NULL,
        node TEXT NOT NULL,
        seq INTEGER NOT NULL,
        envelope TEXT NOT NULL,
        PRIMARY KEY (epoch, verifier, node)
      ) STRICT;
    `,
  },
  {
    version: 4,
    description: "delivery bandwidth: downloaders' byte receipts, observations",
    sql: `
      CREATE TABLE bandwidth_receipts (
        epoch INTEGER NOT NULL,
        holder TEXT NOT NULL,
        downloader TEXT NOT NULL,
        session TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        PRIMARY KEY (epoch, holder, downloader, session)
      ) STRICT;
      CREATE TABLE bandwidth_observations (
        epoch INTEGER NOT NULL,
        verifier TEXT NOT NULL,
        node TEXT NOT NULL,
        seq INTEGER NOT NULL,
        envelope TEXT NOT NULL,
        PRIMARY KEY (epoch, verifier, node)
      ) STRICT;
    `,
  },
  {
    version: 5,
    description: 'sensors: certified devices, their readings, observations',
    sql: `
      CREATE TABLE sensor_devices (
        device TEXT PRIMARY KEY,
        node TEXT NOT NULL,
        cell TEXT NOT NULL,
        kinds TEXT NOT NULL,
        since INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX sensor_devices_by_node ON sensor_devices (node);
      CREATE TABLE sensor_readings (
        epoch INTEGER NOT NULL,
        device TEXT NOT NULL,
        kind TEXT NOT NULL,
        at INTEGER NOT NULL,
        value REAL NOT NULL,
        received_at INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX sensor_readings_by_epoch ON sensor_readings (epoch, device);
      CREATE TABLE sensor_observations (
        epoch INTEGER NOT NULL,
        verifier TEXT NOT NULL,
        node TEXT NOT NULL,
        seq INTEGER NOT NULL,
        envelope TEXT NOT NULL,
        PRIMARY KEY (epoch, verifier, node)
      ) STRICT;
    `,
  },
  {
    version: 6,
    description: 'sensors: the maker whose certificate of a device was checked',
    sql: 'ALTER TABLE sensor_devices ADD COLUMN maker TEXT;',
  },
]

/** Most readings kept of one sensor in one epoch (a reading a second for a quarter of an hour, or one a minute for a few days). */
export const MAX_READINGS_PER_SENSOR_EPOCH = 4_096
/** Epochs of readings kept (older ones are pruned once an epoch's observations are out). */
export const SENSOR_READING_EPOCHS_KEPT = 4
/** Readings pending when {@link VerifierStore.recordReading} commits them itself. */
export const READING_BATCH = 1_024

/** A sensor as a verifier knows it: its certifying node, cell and kinds, its maker, and since when. */
export interface SensorDeviceRecord {
  device: string
  node: string
  cell: string
  kinds: string[]
  /** The maker whose certificate of the device came with its latest reading kept; absent: none. */
  maker?: string
  /** The epoch of the first reading taken. */
  since: number
}

/** Why a reading was not kept. */
export type ReadingRefusal = 'device_taken' | 'too_many_sensors' | 'too_many_readings'

/** Most shards kept for one holder (a valid key alone cannot fill a verifier's disk). */
export const MAX_SHARDS_PER_HOLDER = 100_000
/** Most download sessions counted for one holder in one epoch. */
export const MAX_SESSIONS_PER_HOLDER_EPOCH = 100_000

/** A holder's shard as its signed receipt commits to it, and the epochs it is to be kept. */
export interface HeldShardRecord {
  holder: string
  cid: string
  shard: number
  root: string
  bytes: number
  chunkBytes: number
  /** The first epoch it is challenged in, and the last. */
  fromEpoch: number
  untilEpoch: number
}

/** A node's fraud as a verifier confirmed it. */
export interface ConfirmedFraud {
  evidenceHash: `0x${string}`
  epoch: number
  node: string
  jobId: string
  /** The slashNode transaction, once the slash is on-chain (by anyone). */
  slashedTx: string | null
}

/** One challenge's outcome: `answered`, or why it was missed. */
export type ChallengeOutcome =
  | 'answered'
  | 'unreachable'
  | 'timeout'
  | 'refused'
  | 'malformed'
  | 'bad_signature'

/** A stored bundle's summary. */
export interface StoredBundle {
  cid: string
  epoch: number
  digest: `0x${string}`
  root: `0x${string}`
  totalCumulative: bigint
}

/** A root as the chain has it. */
export interface PostedRoot {
  epoch: number
  root: `0x${string}`
  totalCumulative: bigint
  digest: `0x${string}`
  block: number
}

/**
 * The verifier's state in SQLite (WAL): every write is committed before the call returns, so what a
 * verifier acknowledged (a challenge result, an observation it published or accepted, a bundle, an
 * attestation) survives a kill -9. Writes are idempotent: replaying a step after a restart changes
 * nothing. The one exception is sensor readings ({@link VerifierStore.recordReading}): they are
 * gossip inputs that nobody is ever told were kept, so they are written in batches, and a kill -9
 * loses at most the batch not yet written.
 */
export interface VerifierStore {
  /** The next wire sequence number for a message type; never repeats, across restarts too. */
  nextSeq(type: string): number
  /** Records a challenge's outcome (the first record of a slot wins: a replayed step is a no-op). */
  recordChallenge(c: {
    epoch: number
    node: string
    slot: number
    at: number
    outcome: ChallengeOutcome
    rttMs?: number
  }): void
  /** Slots of `node` in `epoch` already challenged. */
  challengedSlots(epoch: number, node: string): Set<number>
  /** Per node: challenges recorded in `epoch` and how many were answered. */
  challengeCounts(epoch: number): Map<string, { challenges: number; answered: number }>
  /** Keeps an observation unless one with an equal or higher sequence number is held; true if kept. */
  saveObservation(envelope: SignedEnvelope<UptimeObservationBody>): boolean
  /** Every uptime observation held for `epoch`, by any verifier. */
  observations(epoch: number): SignedEnvelope<UptimeObservationBody>[]
  /** Stores a verifier's compute observation (the highest sequence number per epoch, verifier and node). */
  saveComputeObservation(envelope: SignedEnvelope<ComputeObservationBody>): boolean
  computeObservations(epoch: number): SignedEnvelope<ComputeObservationBody>[]
  /** Records a checked job of a node in `epoch`; false when that node's job was counted before. */
  recordWork(w: { epoch: number; node: string; jobId: string; value: bigint }): boolean
  /** Per node: verified jobs and their value in `epoch`. */
  workOf(epoch: number): Map<string, { jobs: number; value: bigint }>
  /** Records confirmed fraud; false when this evidence was recorded before. */
  recordFraud(f: Omit<ConfirmedFraud, 'slashedTx'>): boolean
  frauds(epoch: number): ConfirmedFraud[]
  fraud(evidenceHash: string): ConfirmedFraud | undefined
  markSlashed(evidenceHash: string, tx: string): void
  saveSlashSignature(s: { evidenceHash: string; signer: string; signature: `0x${string}` }): void
  slashSignatures(evidenceHash: string): { signer: `0x${string}`; signature: `0x${string}` }[]
  saveBundle(b: StoredBundle & { bytes: Uint8Array }): void
  bundle(cid: string): (StoredBundle & { bytes: Uint8Array }) | undefined
  /** Keeps a holder's shard from its receipt (a newer receipt of the same shard replaces it). */
  saveHeldShard(r: HeldShardRecord): void
  /** The shards to challenge in `epoch`. */
  heldShards(epoch: number): HeldShardRecord[]
  /** Records a storage challenge's outcome (once per epoch, shard and slot). */
  recordStorageChallenge(c: {
    epoch: number
    holder: string
    cid: string
    shard: number
    slot: number
    passed: boolean
    at: number
  }): void
  /** Slots of a shard already challenged in `epoch`. */
  storageSlots(epoch: number, holder: string, cid: string, shard: number): Set<number>
  /** Per holder: challenges, passed, and the bytes of its shards whose every challenge passed in `epoch`. */
  storageCounts(epoch: number): Map<string, { challenges: number; passed: number; bytes: number }>
  /** Shards none of whose challenges passed in `epoch` (at least one sent). */
  failedShards(epoch: number): { holder: string; cid: string; shard: number }[]
  /** Keeps a downloader's byte receipt (the largest cumulative count per session wins). */
  recordServed(r: { epoch: number; holder: string; downloader: string; session: string; bytes: number }): void
  /** Per holder: bytes served in `epoch` (sessions summed) and distinct downloaders. */
  servedOf(epoch: number): Map<string, { bytes: number; downloaders: number }>
  saveBandwidthObservation(envelope: SignedEnvelope<BandwidthObservationBody>): boolean
  bandwidthObservations(epoch: number): SignedEnvelope<BandwidthObservationBody>[]
  saveStorageObservation(envelope: SignedEnvelope<StorageObservationBody>): boolean
  storageObservations(epoch: number): SignedEnvelope<StorageObservationBody>[]
  /**
   * Keeps a checked reading of `device` (certified by `node` for `cell`, and by `maker` when the
   * reading's certificate carried its checked certificate), in `epoch`; the first
   * node to certify a device keeps it, a node keeps at most `maxSensorsPerNode` devices, and a device
   * at most {@link MAX_READINGS_PER_SENSOR_EPOCH} readings an epoch. The verdict is final when it
   * returns (the caps are counted in memory), but the write is batched: it is committed with the
   * other pending readings once {@link READING_BATCH} are pending, by {@link flushReadings}, or
   * before any read of the readings ({@link readingsOf}, {@link pruneReadings}) and on
   * {@link close}. A process killed in between loses at most that batch; nothing was acknowledged
   * for it (readings are gossip inputs), so nothing else is wrong after a restart.
   *
   * @throws when a batch it flushes cannot be written; that batch is then dropped whole.
   */
  recordReading(
    r: {
      epoch: number
      device: string
      node: string
      cell: string
      kinds: string[]
      maker?: string
      kind: string
      at: number
      value: number
      receivedAt: number
    },
    maxSensorsPerNode: number,
  ): { ok: true } | { ok: false; refusal: ReadingRefusal }
  /** The devices read in `epoch`, with their readings, by device. */
  readingsOf(epoch: number): Map<
    string,
    {
      device: SensorDeviceRecord
      readings: { kind: string; at: number; value: number; receivedAt: number }[]
    }
  >
  /** Forgets readings of epochs before `epoch`. */
  pruneReadings(epoch: number): void
  /**
   * Commits the readings pending (one transaction); a no-op when none are.
   *
   * @throws when they cannot be written; they are then dropped whole (as a kill -9 would lose them).
   */
  flushReadings(): void
  /** The fastest answered uptime challenge of `node` in `epoch` (ms), if any. */
  fastestRtt(epoch: number, node: string): number | undefined
  saveSensorObservation(envelope: SignedEnvelope<SensorObservationBody>): boolean
  sensorObservations(epoch: number): SignedEnvelope<SensorObservationBody>[]
  /** Keeps `signer`'s signature for bundle `cid` of `epoch` (a newer one replaces it). */
  saveAttestation(a: { epoch: number; cid: string; signer: string; signature: `0x${string}` }): void
  attestations(epoch: number, cid: string): { signer: `0x${string}`; signature: `0x${string}` }[]
  recordRoot(r: PostedRoot): void
  /** The newest posted root held, if any. */
  latestRoot(): PostedRoot | undefined
  root(epoch: number): PostedRoot | undefined
  /** Forgets a revoked root and everything after it. */
  forgetRootsFrom(epoch: number): void
  readonly version: number
  close(): void
}

/** Options of {@link openVerifierStore}. */
export interface VerifierStoreInit {
  /**
   * Sensor devices (and nodes) whose records are held in memory for the caps of
   * {@link VerifierStore.recordReading}; when full, they are written and read again from the table
   * as needed (default 65,536).
   */
  cachedDevices?: number
}

/** Opens (creating if needed) the verifier store at `path` and brings its schema up to date. */
export function openVerifierStore(path: string, init: VerifierStoreInit = {}): VerifierStore {
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  // NORMAL in WAL mode: a committed transaction survives the process being killed; only a power
  // loss could take the last ones.
  db.pragma('synchronous = NORMAL')
  const version = migrate(db, VERIFIER_MIGRATIONS)
  const nextSeq = sequenceAllocator(db)

  const insertChallenge = db.prepare(
    'INSERT OR IGNORE INTO challenges (epoch, node, slot, at, result, rtt_ms) VALUES (?, ?, ?, ?, ?, ?)',
  )
  const selectSlots = db.prepare('SELECT slot FROM challenges WHERE epoch = ? AND node = ?')
  const selectCounts = db.prepare(
    "SELECT node, COUNT(*) AS challenges, SUM(result = 'answered') AS answered FROM challenges WHERE epoch = ? GROUP BY node",
  )
  const uptime = observationTable<UptimeObservationBody>(db, 'observations')
  const compute = observationTable<ComputeObservationBody>(db, 'compute_observations')
  const storage = observationTable<StorageObservationBody>(db, 'storage_observations')
  const bandwidth = observationTable<BandwidthObservationBody>(db, 'bandwidth_observations')
  const sensor = observationTable<SensorObservationBody>(db, 'sensor_observations')
  const readings = sensorReadingTable(db, init.cachedDevices ?? 65_536)
  const selectFastest = db.prepare(
    "SELECT MIN(rtt_ms) AS rtt FROM challenges WHERE epoch = ? AND node = ? AND result = 'answered' AND rtt_ms IS NOT NULL",
  )
  const insertBundle = db.prepare(
    'INSERT OR IGNORE INTO bundles (cid, epoch, digest, root, total, bytes) VALUES (?, ?, ?, ?, ?, ?)',
  )
  const selectBundle = db.prepare('SELECT cid, epoch, digest, root, total, bytes FROM bundles WHERE cid = ?')
  const insertAttestation = db.prepare(
    `INSERT INTO attestations (epoch, cid, signer, signature) VALUES (?, ?, ?, ?)
     ON CONFLICT (epoch, cid, signer) DO UPDATE SET signature = excluded.signature`,
  )
  const selectAttestations = db.prepare(
    'SELECT signer, signature FROM attestations WHERE epoch = ? AND cid = ? ORDER BY signer',
  )
  const upsertRoot = db.prepare(
    'INSERT OR REPLACE INTO roots (epoch, root, total, digest, block) VALUES (?, ?, ?, ?, ?)',
  )
  const selectLatestRoot = db.prepare('SELECT * FROM roots ORDER BY epoch DESC LIMIT 1')
  const selectRoot = db.prepare('SELECT * FROM roots WHERE epoch = ?')
  const deleteRoots = db.prepare('DELETE FROM roots WHERE epoch >= ?')

  const upsertHeldShard = db.prepare(`
    INSERT INTO storage_receipts (holder, cid, shard, root, bytes, chunk_bytes, from_epoch, until_epoch)
    VALUES (@holder, @cid, @shard, @root, @bytes, @chunkBytes, @fromEpoch, @untilEpoch)
    ON CONFLICT (holder, cid, shard) DO UPDATE SET root = excluded.root, bytes = excluded.bytes,
      chunk_bytes = excluded.chunk_bytes, from_epoch = excluded.from_epoch, until_epoch = excluded.until_epoch
    WHERE excluded.until_epoch >= storage_receipts.until_epoch`)
  const countHeldShards = db.prepare('SELECT COUNT(*) AS n FROM storage_receipts WHERE holder = ?')
  const countSessions = db.prepare(
    'SELECT COUNT(*) AS n FROM bandwidth_receipts WHERE epoch = ? AND holder = ?',
  )
  const selectHeldShards = db.prepare(
    `SELECT holder, cid, shard, root, bytes, chunk_bytes AS chunkBytes, from_epoch AS fromEpoch,
       until_epoch AS untilEpoch FROM storage_receipts WHERE from_epoch <= ? AND until_epoch >= ?
     ORDER BY holder, cid, shard`,
  )
  const insertStorageChallenge = db.prepare(
    'INSERT OR IGNORE INTO storage_challenges (epoch, holder, cid, shard, slot, passed, at) VALUES (?, ?, ?, ?, ?, ?, ?)',
  )
  const selectStorageSlots = db.prepare(
    'SELECT slot FROM storage_challenges WHERE epoch = ? AND holder = ? AND cid = ? AND shard = ?',
  )
  const selectStorageByShard = db.prepare(
    `SELECT c.holder AS holder, c.cid AS cid, c.shard AS shard, COUNT(*) AS challenges, SUM(c.passed) AS passed,
       r.bytes AS bytes
     FROM storage_challenges c LEFT JOIN storage_receipts r ON r.holder = c.holder AND r.cid = c.cid AND r.shard = c.shard
     WHERE c.epoch = ? GROUP BY c.holder, c.cid, c.shard ORDER BY c.holder`,
  )
  const selectFailedShards = db.prepare(
    `SELECT holder, cid, shard FROM storage_challenges WHERE epoch = ?
     GROUP BY holder, cid, shard HAVING SUM(passed) = 0 ORDER BY cid, shard`,
  )
  const upsertServed = db.prepare(`
    INSERT INTO bandwidth_receipts (epoch, holder, downloader, session, bytes) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (epoch, holder, downloader, session) DO UPDATE SET bytes = excluded.bytes
    WHERE excluded.bytes > bandwidth_receipts.bytes`)
  const selectServed = db.prepare(
    `SELECT holder, SUM(bytes) AS bytes, COUNT(DISTINCT downloader) AS downloaders FROM bandwidth_receipts
     WHERE epoch = ? GROUP BY holder ORDER BY holder`,
  )
  const insertWork = db.prepare(
    'INSERT OR IGNORE INTO compute_work (node, job_id, epoch, value) VALUES (?, ?, ?, ?)',
  )
  const selectWork = db.prepare('SELECT node, value FROM compute_work WHERE epoch = ?')
  const insertFraud = db.prepare(
    'INSERT OR IGNORE INTO compute_frauds (evidence_hash, epoch, node, job_id) VALUES (?, ?, ?, ?)',
  )
  const selectFrauds = db.prepare('SELECT * FROM compute_frauds WHERE epoch = ? ORDER BY evidence_hash')
  const selectFraud = db.prepare('SELECT * FROM compute_frauds WHERE evidence_hash = ?')
  const updateSlashed = db.prepare('UPDATE compute_frauds SET slashed_tx = ? WHERE evidence_hash = ?')
  const insertSlashSignature = db.prepare(
    'INSERT OR IGNORE INTO slash_signatures (evidence_hash, signer, signature) VALUES (?, ?, ?)',
  )
  const selectSlashSignatures = db.prepare(
    'SELECT signer, signature FROM slash_signatures WHERE evidence_hash = ? ORDER BY signer',
  )
  type FraudRow = {
    evidence_hash: string
    epoch: number
    node: string
    job_id: string
    slashed_tx: string | null
  }
  const toFraud = (r: FraudRow): ConfirmedFraud => ({
    evidenceHash: r.evidence_hash as `0x${string}`,
    epoch: r.epoch,
    node: r.node,
    jobId: r.job_id,
    slashedTx: r.slashed_tx,
  })

  type RootRow = { epoch: number; root: string; total: string; digest: string; block: number }
  const toRoot = (r: RootRow | undefined): PostedRoot | undefined =>
    r === undefined
      ? undefined
      : {
          epoch: r.epoch,
          root: r.root as `0x${string}`,
          totalCumulative: BigInt(r.total),
          digest: r.digest as `0x${string}`,
          block: r.block,
        }

  return {
    version,
    nextSeq,
    recordChallenge(c) {
      insertChallenge.run(c.epoch, c.node, c.slot, c.at, c.outcome, c.rttMs ?? null)
    },
    challengedSlots(epoch, node) {
      return new Set((selectSlots.all(epoch, node) as { slot: number }[]).map((r) => r.slot))
    },
    challengeCounts(epoch) {
      const rows = selectCounts.all(epoch) as { node: string; challenges: number; answered: number }[]
      return new Map(rows.map((r) => [r.node, { challenges: r.challenges, answered: r.answered }]))
    },
    saveObservation: uptime.save,
    observations: uptime.list,
    saveHeldShard(r) {
      // A holder's shards are capped: a valid key alone cannot fill the disk.
      if ((countHeldShards.get(r.holder) as { n: number }).n >= MAX_SHARDS_PER_HOLDER) return
      upsertHeldShard.run(r)
    },
    heldShards: (epoch) => selectHeldShards.all(epoch, epoch) as HeldShardRecord[],
    recordStorageChallenge: (c) =>
      void insertStorageChallenge.run(c.epoch, c.holder, c.cid, c.shard, c.slot, c.passed ? 1 : 0, c.at),
    storageSlots: (epoch, holder, cid, shard) =>
      new Set((selectStorageSlots.all(epoch, holder, cid, shard) as { slot: number }[]).map((r) => r.slot)),
    storageCounts(epoch) {
      const out = new Map<string, { challenges: number; passed: number; bytes: number }>()
      const rows = selectStorageByShard.all(epoch) as {
        holder: string
        challenges: number
        passed: number
        bytes: number | null
      }[]
      for (const r of rows) {
        const held = out.get(r.holder) ?? { challenges: 0, passed: 0, bytes: 0 }
        held.challenges += r.challenges
        held.passed += r.passed
        if (r.passed === r.challenges) held.bytes += r.bytes ?? 0
        out.set(r.holder, held)
      }
      return out
    },
    failedShards: (epoch) =>
      selectFailedShards.all(epoch) as { holder: string; cid: string; shard: number }[],
    recordServed(r) {
      if ((countSessions.get(r.epoch, r.holder) as { n: number }).n >= MAX_SESSIONS_PER_HOLDER_EPOCH) return
      upsertServed.run(r.epoch, r.holder, r.downloader, r.session, r.bytes)
    },
    servedOf(epoch) {
      const out = new Map<string, { bytes: number; downloaders: number }>()
      for (const r of selectServed.all(epoch) as { holder: string; bytes: number; downloaders: number }[])
        out.set(r.holder, { bytes: r.bytes, downloaders: r.downloaders })
      return out
    },
    saveBandwidthObservation: bandwidth.save,
    bandwidthObservations: bandwidth.list,
    saveStorageObservation: storage.save,
    storageObservations: storage.list,
    recordReading: readings.record,
    readingsOf: readings.of,
    pruneReadings: readings.prune,
    flushReadings: readings.flush,
    fastestRtt(epoch, node) {
      const r = selectFastest.get(epoch, node) as { rtt: number | null }
      return r.rtt ?? undefined
    },
    saveSensorObservation: sensor.save,
    sensorObservations: sensor.list,
    saveComputeObservation: compute.save,
    computeObservations: compute.list,
    recordWork: (w) => insertWork.run(w.node, w.jobId, w.epoch, w.value.toString()).changes > 0,
    workOf(epoch) {
      const out = new Map<string, { jobs: number; value: bigint }>()
      for (const r of selectWork.all(epoch) as { node: string; value: string }[]) {
        const held = out.get(r.node) ?? { jobs: 0, value: 0n }
        out.set(r.node, { jobs: held.jobs + 1, value: held.value + BigInt(r.value) })
      }
      return out
    },
    recordFraud: (f) => insertFraud.run(f.evidenceHash, f.epoch, f.node, f.jobId).changes > 0,
    frauds: (epoch) => (selectFrauds.all(epoch) as FraudRow[]).map(toFraud),
    fraud(evidenceHash) {
      const r = selectFraud.get(evidenceHash) as FraudRow | undefined
      return r && toFraud(r)
    },
    markSlashed(evidenceHash, tx) {
      updateSlashed.run(tx, evidenceHash)
    },
    saveSlashSignature(x) {
      insertSlashSignature.run(x.evidenceHash, x.signer.toLowerCase(), x.signature)
    },
    slashSignatures: (evidenceHash) =>
      selectSlashSignatures.all(evidenceHash) as { signer: `0x${string}`; signature: `0x${string}` }[],
    saveBundle(b) {
      insertBundle.run(b.cid, b.epoch, b.digest, b.root, b.totalCumulative.toString(), Buffer.from(b.bytes))
    },
    bundle(cid) {
      const r = selectBundle.get(cid) as
        | { cid: string; epoch: number; digest: string; root: string; total: string; bytes: Buffer }
        | undefined
      if (r === undefined) return undefined
      return {
        cid: r.cid,
        epoch: r.epoch,
        digest: r.digest as `0x${string}`,
        root: r.root as `0x${string}`,
        totalCumulative: BigInt(r.total),
        bytes: new Uint8Array(r.bytes),
      }
    },
    saveAttestation(a) {
      insertAttestation.run(a.epoch, a.cid, a.signer.toLowerCase(), a.signature)
    },
    attestations(epoch, cid) {
      return selectAttestations.all(epoch, cid) as { signer: `0x${string}`; signature: `0x${string}` }[]
    },
    recordRoot(r) {
      upsertRoot.run(r.epoch, r.root, r.totalCumulative.toString(), r.digest, r.block)
    },
    latestRoot: () => toRoot(selectLatestRoot.get() as RootRow | undefined),
    root: (epoch) => toRoot(selectRoot.get(epoch) as RootRow | undefined),
    forgetRootsFrom(epoch) {
      deleteRoots.run(epoch)
    },
    close() {
      readings.flush()
      db.close()
    },
  }
}

/**
 * The sensor devices and readings tables, and the batching of readings (see
 * {@link VerifierStore.recordReading}). What the caps need is counted in memory so that a verdict
 * never waits for a write: the devices seen (a cache of the devices table with every pending change
 * applied), the devices of each node, and the readings of each epoch and device. Each is loaded from
 * the table on first sight, which is current then: a device or node whose record is not held has no
 * pending change (a full cache is emptied only right after a flush), and an epoch and device whose
 * count is not held has no pending reading (counts are dropped only after a flush, by a prune).
 */
function sensorReadingTable(
  db: Database.Database,
  cachedDevices: number,
): {
  record: VerifierStore['recordReading']
  of: VerifierStore['readingsOf']
  prune: VerifierStore['pruneReadings']
  flush: VerifierStore['flushReadings']
} {
  type DeviceRow = {
    device: string
    node: string
    cell: string
    kinds: string
    maker: string | null
    since: number
  }
  const selectDevice = db.prepare(
    'SELECT device, node, cell, kinds, maker, since FROM sensor_devices WHERE device = ?',
  )
  const countDevices = db.prepare('SELECT COUNT(*) AS n FROM sensor_devices WHERE node = ?')
  const upsertDevice = db.prepare(
    `INSERT INTO sensor_devices (device, node, cell, kinds, maker, since) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (device) DO UPDATE SET cell = excluded.cell, kinds = excluded.kinds, maker = excluded.maker`,
  )
  const countReadings = db.prepare('SELECT COUNT(*) AS n FROM sensor_readings WHERE epoch = ? AND device = ?')
  const insertReading = db.prepare(
    'INSERT INTO sensor_readings (epoch, device, kind, at, value, received_at) VALUES (?, ?, ?, ?, ?, ?)',
  )
  const selectReadings = db.prepare(
    `SELECT r.device AS device, r.kind AS kind, r.at AS at, r.value AS value, r.received_at AS receivedAt,
       d.node AS node, d.cell AS cell, d.kinds AS kinds, d.maker AS maker, d.since AS since
     FROM sensor_readings r JOIN sensor_devices d ON d.device = r.device
     WHERE r.epoch = ? ORDER BY r.device, r.at`,
  )
  const deleteReadings = db.prepare('DELETE FROM sensor_readings WHERE epoch < ?')

  /** Devices as the table will hold them once the pending changes are written. */
  const devices = new Map<string, DeviceRow>()
  /** Devices of each node, likewise. */
  const devicesOf = new Map<string, number>()
  /** Readings of each epoch and device (`epoch|device`), likewise. */
  const readingCounts = new Map<string, number>()
  /** Devices added or changed since the last flush. */
  const changed = new Set<DeviceRow>()
  /** Readings not yet written, in the order taken. */
  let pending: [
    epoch: number,
    device: string,
    kind: string,
    at: number,
    value: number,
    receivedAt: number,
  ][] = []

  const write = db.transaction((rows: typeof pending, devicesChanged: readonly DeviceRow[]) => {
    for (const d of devicesChanged) upsertDevice.run(d.device, d.node, d.cell, d.kinds, d.maker, d.since)
    for (const r of rows) insertReading.run(r[0], r[1], r[2], r[3], r[4], r[5])
  })
  const flush = (): void => {
    if (pending.length === 0 && changed.size === 0) return
    const rows = pending
    const devicesChanged = [...changed]
    pending = []
    changed.clear()
    try {
      write(rows, devicesChanged)
    } catch (err) {
      // The batch is lost (as on a kill): what is counted in memory starts again from the table.
      devices.clear()
      devicesOf.clear()
      readingCounts.clear()
      throw err
    }
  }
  const makeRoom = (): void => {
    if (devices.size < cachedDevices && devicesOf.size < cachedDevices) return
    flush()
    devices.clear()
    devicesOf.clear()
  }
  const deviceRow = (device: string): DeviceRow | undefined => {
    const cached = devices.get(device)
    if (cached !== undefined) return cached
    const row = selectDevice.get(device) as DeviceRow | undefined
    if (row !== undefined) {
      makeRoom()
      devices.set(device, row)
    }
    return row
  }
  const devicesOfNode = (node: string): number => {
    const cached = devicesOf.get(node)
    if (cached !== undefined) return cached
    const n = (countDevices.get(node) as { n: number }).n
    makeRoom()
    devicesOf.set(node, n)
    return n
  }

  return {
    record(r, maxSensorsPerNode) {
      const held = deviceRow(r.device)
      const kinds = JSON.stringify(r.kinds)
      const maker = r.maker ?? null
      if (held === undefined) {
        const n = devicesOfNode(r.node)
        if (n >= maxSensorsPerNode) return { ok: false, refusal: 'too_many_sensors' }
        const row = { device: r.device, node: r.node, cell: r.cell, kinds, maker, since: r.epoch }
        makeRoom()
        devices.set(r.device, row)
        devicesOf.set(r.node, n + 1)
        changed.add(row)
      } else if (held.node !== r.node) {
        return { ok: false, refusal: 'device_taken' }
      } else if (held.cell !== r.cell || held.kinds !== kinds || held.maker !== maker) {
        held.cell = r.cell
        held.kinds = kinds
        held.maker = maker
        changed.add(held)
      }
      const key = `${r.epoch}|${r.device}`
      const count = readingCounts.get(key) ?? (countReadings.get(r.epoch, r.device) as { n: number }).n
      if (count >= MAX_READINGS_PER_SENSOR_EPOCH) return { ok: false, refusal: 'too_many_readings' }
      readingCounts.set(key, count + 1)
      pending.push([r.epoch, r.device, r.kind, r.at, r.value, r.receivedAt])
      if (pending.length >= READING_BATCH) flush()
      return { ok: true }
    },
    of(epoch) {
      flush()
      const out: ReturnType<VerifierStore['readingsOf']> = new Map()
      const rows = selectReadings.all(epoch) as (DeviceRow & {
        kind: string
        at: number
        value: number
        receivedAt: number
      })[]
      for (const r of rows) {
        let held = out.get(r.device)
        if (held === undefined) {
          held = {
            device: {
              device: r.device,
              node: r.node,
              cell: r.cell,
              kinds: JSON.parse(r.kinds),
              ...(r.maker === null ? {} : { maker: r.maker }),
              since: r.since,
            },
            readings: [],
          }
          out.set(r.device, held)
        }
        held.readings.push({ kind: r.kind, at: r.at, value: r.value, receivedAt: r.receivedAt })
      }
      return out
    },
    prune(epoch) {
      flush()
      deleteReadings.run(epoch)
      for (const key of readingCounts.keys())
        if (Number(key.slice(0, key.indexOf('|'))) < epoch) readingCounts.delete(key)
    },
    flush,
  }
}

/**
 * One table of signed observations (epoch, verifier, node → the envelope with the highest sequence
 * number): `save` keeps an envelope unless one with an equal or higher number is held (true if
 * kept), `list` returns an epoch's, sorted by verifier and node.
 */
function observationTable<B extends { epoch: number; node: string }>(
  db: Database.Database,
  table:
    | 'observations'
    | 'compute_observations'
    | 'storage_observations'
    | 'bandwidth_observations'
    | 'sensor_observations',
): { save(e: SignedEnvelope<B>): boolean; list(epoch: number): SignedEnvelope<B>[] } {
  const upsert = db.prepare(`
    INSERT INTO ${table} (epoch, verifier, node, seq, envelope) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (epoch, verifier, node) DO UPDATE SET seq = excluded.seq, envelope = excluded.envelope
    WHERE excluded.seq > ${table}.seq`)
  const select = db.prepare(`SELECT envelope FROM ${table} WHERE epoch = ? ORDER BY verifier, node`)
  return {
    save: (e) => upsert.run(e.body.epoch, e.from, e.body.node, e.seq, JSON.stringify(e)).changes > 0,
    list: (epoch) =>
      (select.all(epoch) as { envelope: string }[]).map((r) => JSON.parse(r.envelope) as SignedEnvelope<B>),
  }
}
