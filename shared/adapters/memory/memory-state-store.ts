/** In-memory StateStore for domain unit tests. Same semantics as the real adapters. */
import { ConditionFailedError } from '../../domain/errors.ts';
import type { StateItem, StateStore, WriteCondition } from '../../ports/state-store.ts';

export class MemoryStateStore implements StateStore {
  private readonly items = new Map<string, StateItem<unknown>>();
  private readonly now: () => number;

  constructor(now: () => number = () => Date.now()) {
    this.now = now;
  }

  private live(pk: string, sk: string): StateItem<unknown> | undefined {
    const it = this.items.get(`${pk}\u0000${sk}`);
    if (!it) return undefined;
    if (it.expiresAt !== undefined && it.expiresAt <= Math.floor(this.now() / 1000)) return undefined;
    return it;
  }

  async get<T>(pk: string, sk: string) {
    const it = this.live(pk, sk);
    return it ? (structuredClone(it) as StateItem<T>) : undefined;
  }

  async put<T>(item: { pk: string; sk: string; data: T; expiresAt?: number }, condition?: WriteCondition) {
    const current = this.live(item.pk, item.sk);
    if (condition?.kind === 'absent' && current) throw new ConditionFailedError('exists');
    if (condition?.kind === 'version' && current?.version !== condition.version) {
      throw new ConditionFailedError('version');
    }
    const stored: StateItem<T> = {
      pk: item.pk,
      sk: item.sk,
      data: structuredClone(item.data),
      ...(item.expiresAt === undefined ? {} : { expiresAt: item.expiresAt }),
      version: (this.items.get(`${item.pk}\u0000${item.sk}`)?.version ?? 0) + 1,
    };
    this.items.set(`${item.pk}\u0000${item.sk}`, stored);
    return structuredClone(stored);
  }

  async delete(pk: string, sk: string) {
    this.items.delete(`${pk}\u0000${sk}`);
  }

  async query<T>(pk: string, opts: { skPrefix?: string; limit?: number } = {}) {
    return [...this.items.values()]
      .filter((i) => i.pk === pk && i.sk.startsWith(opts.skPrefix ?? '') && this.live(i.pk, i.sk))
      .sort((a, b) => (a.sk < b.sk ? -1 : 1))
      .slice(0, opts.limit ?? 1000)
      .map((i) => structuredClone(i) as StateItem<T>);
  }

  async count(pk: string) {
    return (await this.query(pk, { limit: Number.MAX_SAFE_INTEGER })).length;
  }

  async ping() {}
}
