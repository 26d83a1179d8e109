/**
 * The concurrency suite's record of what happened: every request any simulated client sent, with
 * its answer and when it started and ended, and the violations the checks found. A violation names
 * the ids it is about, so the report can list the requests that touched them.
 */

export interface Rec {
  seq: number;
  worker: number;
  /** The workload step this request belongs to (e.g. `crossing-move#17`). */
  op: string;
  actor: string;
  method: string;
  path: string;
  body: string;
  status: number;
  problem: string;
  response: string;
  t0: number;
  t1: number;
}

export interface Violation {
  kind: string;
  message: string;
  ids: string[];
}

/** mulberry32: a small seeded PRNG, enough to replay the workload's choices from one seed. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T | undefined {
    return xs.length ? xs[Math.floor(this.next() * xs.length)] : undefined;
  }
  /** A key of `weights`, chosen with probability proportional to its weight. */
  weighted<K extends string>(weights: Record<K, number>): K {
    const entries = Object.entries(weights) as [K, number][];
    let r = this.next() * entries.reduce((s, [, w]) => s + w, 0);
    for (const [k, w] of entries) {
      r -= w;
      if (r < 0) return k;
    }
    return (entries[entries.length - 1] as [K, number])[0];
  }
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}…` : s);

export class History {
  readonly recs: Rec[] = [];
  readonly violations: Violation[] = [];
  readonly t0 = Date.now();
  checks = 0;
  private seq = 0;

  add(r: Omit<Rec, 'seq'>): Rec {
    const rec = { ...r, seq: ++this.seq, body: clip(r.body, 400), response: clip(r.response, 400) };
    this.recs.push(rec);
    return rec;
  }

  /** One invariant checked; a failure records a violation. */
  check(ok: boolean, kind: string, message: string, ids: string[] = []): boolean {
    this.checks++;
    if (!ok) this.violations.push({ kind, message, ids: ids.filter(Boolean) });
    return ok;
  }

  /** The whole history, one JSON record a line, for a closer look than the report gives. */
  jsonl(): string {
    return `${this.recs.map((r) => JSON.stringify(r)).join('\n')}\n`;
  }

  touching(ids: string[], limit = 12): Rec[] {
    if (ids.length === 0) return [];
    const hits = this.recs.filter((r) => ids.some((id) => (r.path + r.body + r.response).includes(id)));
    return hits.length > limit ? [...hits.slice(0, 4), ...hits.slice(-(limit - 4))] : hits;
  }

  line(r: Rec): string {
    const ms = (t: number) => String(t - this.t0).padStart(6);
    const problem = r.problem ? ` ${r.problem}` : '';
    return `  #${r.seq} [${ms(r.t0)}..${ms(r.t1)} ms] w${r.worker} ${r.op} ${r.actor}: ${r.method} ${r.path} ${clip(r.body, 160)} -> ${r.status}${problem} ${clip(r.response, 160)}`;
  }

  /** Every violation, grouped by kind, each with the requests that touched its ids. */
  report(): string {
    const out: string[] = [];
    const kinds = new Map<string, Violation[]>();
    for (const v of this.violations) kinds.set(v.kind, [...(kinds.get(v.kind) ?? []), v]);
    for (const [kind, vs] of kinds) {
      out.push(`violation class ${kind}: ${vs.length}`);
      for (const v of vs.slice(0, 6)) {
        out.push(`- ${v.message}${v.ids.length ? ` [${v.ids.join(', ')}]` : ''}`);
        for (const r of this.touching(v.ids)) out.push(this.line(r));
      }
      if (vs.length > 6) out.push(`- … and ${vs.length - 6} more of this class`);
    }
    return out.join('\n');
  }
}
