/** In-memory StateStore for domain unit tests. Same semantics as the real adapters. */
import { ConditionFailedError } from '../../domain/errors.ts';
import type { StateItem, StateStore, StateWrite, WriteCondition } from '../../ports/state-store.ts';

export class MemoryStateStore implements StateStore {
  private readonly items = new Map<string, StateItem<unknown>>();
  /** Counter items: `pk\0sk` -> name -> value. */
  private readonly counterItems = new Map<string, { pk: string; values: Map<string, number> }>();
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
    return this.putNow(item, condition);
  }

  /** Synchronous, so a transaction's writes land with nothing in between. */
  private putNow<T>(
    item: { pk: string; sk: string; data: T; expiresAt?: number },
    condition?: WriteCondition,
  ) {
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

  async queryMany<T>(pks: readonly string[]) {
    const out = new Map<string, StateItem<T>[]>(pks.map((pk) => [pk, []]));
    for (const i of [...this.items.values()].sort((a, b) => (a.sk < b.sk ? -1 : 1)))
      if (out.has(i.pk) && this.live(i.pk, i.sk)) out.get(i.pk)?.push(structuredClone(i) as StateItem<T>);
    return out;
  }

  async count(pk: string) {
    return (await this.query(pk, { limit: Number.MAX_SAFE_INTEGER })).length;
  }

  /** Checks every condition first, then applies every write, with no await between: all or nothing. */
  async transact(writes: readonly StateWrite[]) {
    const keys = new Set<string>();
    for (const w of writes) {
      const key = `${w.op === 'put' ? w.item.pk : w.pk}\u0000${w.op === 'put' ? w.item.sk : w.sk}`;
      if (keys.has(key)) throw new Error(`two writes to one item in a transaction: ${key}`);
      keys.add(key);
      const condition = w.op === 'add' ? undefined : w.condition;
      const current =
        w.op === 'put' ? this.live(w.item.pk, w.item.sk) : w.op === 'add' ? undefined : this.live(w.pk, w.sk);
      if (condition?.kind === 'absent' && current) throw new ConditionFailedError('exists');
      if (condition?.kind === 'version' && current?.version !== condition.version)
        throw new ConditionFailedError('version');
    }
    for (const w of writes) {
      if (w.op === 'put') {
        this.putNow(w.item);
        if (w.condition?.kind === 'absent') {
          const stored = this.items.get(`${w.item.pk}\u0000${w.item.sk}`);
          if (stored) stored.version = 1;
        }
      } else if (w.op === 'delete') this.items.delete(`${w.pk}\u0000${w.sk}`);
      else if (w.op === 'add') {
        const key = `${w.pk}\u0000${w.sk}`;
        const item = this.counterItems.get(key) ?? { pk: w.pk, values: new Map<string, number>() };
        for (const [name, delta] of Object.entries(w.deltas))
          item.values.set(name, (item.values.get(name) ?? 0) + delta);
        this.counterItems.set(key, item);
      }
    }
  }

  async counters(pk: string) {
    const out: Record<string, number> = {};
    for (const item of this.counterItems.values())
      if (item.pk === pk) for (const [name, v] of item.values) out[name] = (out[name] ?? 0) + v;
    return out;
  }

  async ping() {}
}
