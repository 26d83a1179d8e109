/**
 * Node health from a canary: write, read back and delete a small object, timing it. Hysteresis keeps
 * a flapping node from flipping placement back and forth: one failure makes a healthy node
 * `degraded`, `failThreshold` in a row make it `down`, and a down node needs `recoverThreshold`
 * clean canaries in a row to be `healthy` again. A slow but correct canary is `degraded`.
 *
 * The verdict is shared state: in AWS the canary runs in the scheduled function while placement and
 * downloads run in the API functions, each with its own memory. Every verdict is written to the
 * state store (`health`/<node>, expiring after `verdictTtlSeconds`, so a canary that stops running
 * stops steering traffic), and every process reads the verdicts back into its node registry at
 * most every `maxAgeMs` (NodeRegistry.fresh()). The hysteresis counters travel with the verdict,
 * so canaries run by different function instances still count in a row.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from '../observability/logger.ts';
import type { StateStore } from '../ports/state-store.ts';
import type { NodeHealth, NodeRegistry } from './node-registry.ts';

const HEALTH_PK = 'health';

export interface NodeStatus {
  health: NodeHealth;
  latencyMs: number | null;
  lastCheck: string | null;
  lastError: string | null;
  failures: number;
  successes: number;
}

export class HealthMonitor {
  private readonly nodes: NodeRegistry;
  private readonly log: Logger;
  private readonly status = new Map<string, NodeStatus>();
  private readonly store: StateStore | undefined;
  private readonly opts: {
    failThreshold: number;
    recoverThreshold: number;
    slowMs: number;
    timeoutMs: number;
    verdictTtlSeconds: number;
    maxAgeMs: number;
  };

  constructor(
    nodes: NodeRegistry,
    log: Logger,
    opts: Partial<HealthMonitor['opts']> & { store?: StateStore } = {},
  ) {
    this.nodes = nodes;
    this.log = log;
    const { store, ...rest } = opts;
    this.store = store;
    this.opts = {
      failThreshold: 2,
      recoverThreshold: 2,
      slowMs: 2000,
      timeoutMs: 5000,
      verdictTtlSeconds: 600,
      maxAgeMs: 10_000,
      ...rest,
    };
    if (store) nodes.useHealthSource({ load: () => this.load(), maxAgeMs: this.opts.maxAgeMs });
  }

  /** Reads every node's shared verdict into this process (registry and status). */
  async load(): Promise<void> {
    if (!this.store) return;
    const items = await this.store.query<NodeStatus>(HEALTH_PK);
    const seen = new Set<string>();
    for (const i of items) {
      seen.add(i.sk);
      this.status.set(i.sk, i.data);
      this.nodes.setHealth(i.sk, i.data.health);
    }
    // No verdict (never checked, or it expired): nothing says the node is unwell.
    for (const n of this.nodes.all()) if (!seen.has(n.id) && this.status.has(n.id)) this.forget(n.id);
  }

  private forget(nodeId: string) {
    this.status.delete(nodeId);
    this.nodes.setHealth(nodeId, 'healthy');
  }

  of(nodeId: string): NodeStatus {
    return (
      this.status.get(nodeId) ?? {
        health: this.nodes.get(nodeId)?.health ?? 'healthy',
        latencyMs: null,
        lastCheck: null,
        lastError: null,
        failures: 0,
        successes: 0,
      }
    );
  }

  async checkAll(): Promise<Record<string, NodeStatus>> {
    // Continue the counts of whichever instance ran the last canary.
    await this.load();
    await Promise.all(this.nodes.all().map((n) => this.check(n.id)));
    return Object.fromEntries(this.nodes.all().map((n) => [n.id, this.of(n.id)]));
  }

  async check(nodeId: string): Promise<NodeStatus> {
    const node = this.nodes.get(nodeId);
    if (!node) throw new Error(`unknown node ${nodeId}`);
    const s = { ...this.of(nodeId) };
    const key = `health/${randomUUID()}`;
    const body = randomBytes(64);
    const started = performance.now();
    try {
      await Promise.race([
        (async () => {
          await node.store.write(key, body);
          const chunks: Buffer[] = [];
          for await (const c of (await node.store.read(key)) as AsyncIterable<Buffer>) chunks.push(c);
          if (!Buffer.concat(chunks).equals(body)) throw new Error('canary read back different bytes');
          await node.store.delete(key);
        })(),
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error('canary timed out')), this.opts.timeoutMs).unref(),
        ),
      ]);
      s.latencyMs = Math.round(performance.now() - started);
      s.failures = 0;
      s.successes++;
      s.lastError = null;
      if (s.health === 'down') s.health = s.successes >= this.opts.recoverThreshold ? 'healthy' : 'down';
      else s.health = s.latencyMs > this.opts.slowMs ? 'degraded' : 'healthy';
    } catch (err) {
      s.latencyMs = Math.round(performance.now() - started);
      s.successes = 0;
      s.failures++;
      s.lastError = String((err as Error)?.message ?? err);
      s.health = s.failures >= this.opts.failThreshold ? 'down' : s.health === 'down' ? 'down' : 'degraded';
      this.log.warn('node canary failed', {
        nodeId,
        failures: s.failures,
        health: s.health,
        err: s.lastError,
      });
    }
    s.lastCheck = new Date().toISOString();
    this.status.set(nodeId, s);
    this.nodes.setHealth(nodeId, s.health);
    await this.store
      ?.put({
        pk: HEALTH_PK,
        sk: nodeId,
        data: s,
        expiresAt: Math.floor(Date.now() / 1000) + this.opts.verdictTtlSeconds,
      })
      .catch((err: unknown) =>
        this.log.warn('node verdict not shared', { nodeId, err: String((err as Error)?.message ?? err) }),
      );
    return s;
  }
}
