/**
 * Opens the Redis/Valkey client the adapters share. `standalone` is one server (Redis on a laptop,
 * a self-run Redis); `cluster` follows the cluster's slot map and MOVED/ASK redirects, as
 * ElastiCache Serverless requires (it is cluster-mode only, behind one TLS endpoint).
 * Commands fail fast while disconnected (no offline queue): the ports turn that into 503s or
 * fail-open reads rather than requests hanging on a dead cache.
 */
import { Cluster, Redis } from 'ioredis';

export type RedisClient = Redis | Cluster;
export type RedisMode = 'standalone' | 'cluster';

export function openRedis(url: string, mode: RedisMode = 'standalone', connectTimeout = 2000): RedisClient {
  const common = { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout } as const;
  if (mode === 'standalone') {
    const redis = new Redis(url, { ...common, lazyConnect: true });
    redis.on('error', () => undefined);
    return redis;
  }
  const u = new URL(url);
  const tls = u.protocol === 'rediss:';
  const cluster = new Cluster([{ host: u.hostname, port: Number(u.port || 6379) }], {
    lazyConnect: true,
    enableOfflineQueue: false,
    slotsRefreshTimeout: connectTimeout,
    // With TLS the certificate names the endpoint, not the node addresses the slot map lists:
    // keep host names as given so TLS checks the name the certificate carries.
    ...(tls ? { dnsLookup: (address, callback) => callback(null, address) } : {}),
    redisOptions: {
      ...common,
      ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
      ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
      ...(tls ? { tls: {} } : {}),
    },
  });
  cluster.on('error', () => undefined);
  return cluster;
}
