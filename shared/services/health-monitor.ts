/**
 * Node health from a canary: write, read back and delete a small object, timing it. Hysteresis keeps
 * a flapping node from flipping placement back and forth: one failure makes a healthy node
 * `degraded`, `failThreshold` in a row make it `down`, and a down node needs `recoverThreshold`
 * clean canaries in a row to be `healthy` again. A slow but correct canary is `degraded`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from '../observability/logger.ts';
import type { NodeHealth, NodeRegistry } from './node-registry.ts';

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
  private readonly opts: {
    failThreshold: number;
    recoverThreshold: number;
    slowMs: number;
    timeoutMs: number;
  };

  constructor(nodes: NodeRegistry, log: Logger, opts: Partial<HealthMonitor['opts']> = {}) {
    this.nodes = nodes;
    this.log = log;
    this.opts = { failThreshold: 2, recoverThreshold: 2, slowMs: 2000, timeoutMs: 5000, ...opts };
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
    return s;
  }
}
