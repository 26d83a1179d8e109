/**
 * Operations views: deep health (every dependency, with latency) and storage usage per user and
 * per node. Read-only; the numbers come from the system of record, never from the cache: per user
 * the usage column (charged in each commit's and purge's transaction), per node and in total the
 * version counters (kept in the same transactions), so no query reads every version or every user.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../observability/logger.ts';
import type { BlobStore } from '../ports/blob-store.ts';
import type { Cache } from '../ports/cache.ts';
import type { Database } from '../ports/database.ts';
import type { ItemStore, UserStore } from '../ports/metadata.ts';
import type { StateStore } from '../ports/state-store.ts';
import type { CounterAudit } from './counter-audit.ts';

export interface Check {
  ok: boolean;
  latencyMs: number;
}

export class OpsService {
  private readonly db: Database;
  private readonly users: UserStore;
  private readonly items: ItemStore;
  private readonly cache: Cache;
  private readonly state: StateStore;
  private readonly nodes: () => BlobStore[];
  private readonly log: Logger;
  private readonly counters: Pick<CounterAudit, 'versionCountsReady'>;

  constructor(deps: {
    db: Database;
    users: UserStore;
    items: ItemStore;
    cache: Cache;
    state: StateStore;
    nodes: () => BlobStore[];
    log: Logger;
    counters: Pick<CounterAudit, 'versionCountsReady'>;
  }) {
    this.db = deps.db;
    this.users = deps.users;
    this.items = deps.items;
    this.cache = deps.cache;
    this.state = deps.state;
    this.nodes = deps.nodes;
    this.log = deps.log;
    this.counters = deps.counters;
  }

  private async time(name: string, probe: () => Promise<unknown>, timeoutMs = 3000): Promise<Check> {
    const started = performance.now();
    try {
      await Promise.race([
        probe(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), timeoutMs).unref()),
      ]);
      return { ok: true, latencyMs: Math.round((performance.now() - started) * 10) / 10 };
    } catch (err) {
      this.log.warn('health check failed', { check: name, err: String(err) });
      return { ok: false, latencyMs: Math.round(performance.now() - started) };
    }
  }

  async deepHealth(): Promise<{ status: 'ok' | 'degraded'; checks: Record<string, Check> }> {
    const probeKey = `health:${randomUUID()}`;
    const entries: [string, () => Promise<unknown>][] = [
      ['database', () => this.db.ping()],
      [
        'cache',
        async () => {
          await this.cache.set(probeKey, '1', 10);
          if ((await this.cache.get(probeKey)) !== '1') throw new Error('cache lost a write');
          await this.cache.del([probeKey]);
        },
      ],
      ['stateStore', () => this.state.ping()],
      ...this.nodes().map((n): [string, () => Promise<unknown>] => [`node:${n.nodeId}`, () => n.ping()]),
    ];
    const results = await Promise.all(
      entries.map(async ([name, probe]) => [name, await this.time(name, probe)] as const),
    );
    const checks = Object.fromEntries(results);
    return { status: results.every(([, c]) => c.ok) ? 'ok' : 'degraded', checks };
  }

  /**
   * The total is the sum of every version's size (by node), which is every user's usage: a version
   * is charged to its owner in the transaction that writes it, and given back in the one that
   * purges it. (Summing the users listed would stop at the list's length.)
   */
  async usage() {
    await this.counters.versionCountsReady();
    const users = await this.users.byUsage(10_000);
    const nodes = await this.items.bytesByNode();
    return {
      totalBytes: nodes.reduce((sum, n) => sum + n.bytes, 0),
      users: users.map((u) => ({
        userId: u.id,
        email: u.email,
        usedBytes: u.usedBytes,
        quotaBytes: u.quotaBytes,
      })),
      nodes,
    };
  }
}
