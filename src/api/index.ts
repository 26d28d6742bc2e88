/** The HTTP API (fastify) and the data it serves: the public door of src/api. */
export {
  type ApiServerComponents,
  type ApiServerInit,
  createApiServer,
  DEFAULT_LIMIT,
  LOOPBACK_HOSTNAMES,
  MAX_URL_LENGTH,
} from './api-server.js'
export type { ApiDataSource, ApiEvent } from './data-source.js'
export { API_STATUS, ApiError, type ApiErrorCode, apiErrorCodes, statusOf } from './errors.js'
export { type Health, HealthProber, type HealthTargets } from './health-prober.js'
export { JobLog } from './job-log.js'
export {
  createNetworkDataSource,
  explainUptime,
  type NetworkDataSource,
  type NetworkDataSourceComponents,
  type NetworkDataSourceInit,
} from './network-data-source.js'
export * from './schemas.js'
export { type FeedQuery, type FeedReading, SensorFeed } from './sensor-feed.js'
export { loadStaticFiles, MAX_STATIC_BYTES, MAX_STATIC_FILES, type StaticFile } from './static-files.js'
export {
  type FeedShard,
  MAX_FEED_HOLDERS,
  MAX_FEED_SHARDS_PER_HOLDER,
  StorageFeed,
  type StorageFeedComponents,
} from './storage-feed.js'
