/** The in-memory UserStore, with the semantics of shared/adapters/postgres/user-repository.ts. */
import { randomUUID } from 'node:crypto';
import { UniqueViolationError } from '../../domain/errors.ts';
import type { User } from '../../domain/model.ts';
import type { Tx, UserStore } from '../../ports/metadata.ts';
import { newItem } from './memory-metadata-items.ts';
import { MemoryStore, type UserRow } from './memory-metadata-state.ts';
import {
  compareNumber,
  compareUuid,
  int4OrNull,
  int8,
  int8OrNull,
  limitOf,
  uuid,
} from './memory-metadata-values.ts';

const toUser = (r: UserRow): User => ({
  id: r.id,
  email: r.email,
  role: r.role === 'admin' ? 'admin' : 'user',
  rootFolderId: r.rootFolderId,
  quotaBytes: r.quotaBytes,
  usedBytes: r.usedBytes,
  keepVersions: r.keepVersions,
  keepDays: r.keepDays,
  trashDays: r.trashDays,
});

/** Users; `update` and `ensure` run their own transactions, as the SQL adapter does. */
export class MemoryUserStore extends MemoryStore implements UserStore {
  get(id: string) {
    return this.run((t) => {
      const r = t.users.get(uuid(id));
      return r ? toUser(r) : undefined;
    });
  }

  /** Looks up `email.trim().toLowerCase()`; `ensure` stores `email.toLowerCase()` (no trim), as there. */
  byEmail(email: string) {
    return this.run((t) => {
      const key = email.trim().toLowerCase();
      for (const r of t.users.values()) if (r.emailKey === key) return toUser(r);
      return undefined;
    });
  }

  roleOf(id: string) {
    return this.run((t) => {
      const r = t.users.get(uuid(id));
      return r ? (r.role === 'admin' ? ('admin' as const) : ('user' as const)) : undefined;
    });
  }

  update(id: string, patch: { role?: 'admin' | 'user'; quotaBytes?: number }) {
    return this.db.transaction((tx) =>
      this.db.run(this.db.txOf(tx), (t) => {
        const quota = int8OrNull(patch.quotaBytes);
        const admins = [...t.users.values()].filter((u) => u.role === 'admin');
        const row = t.users.get(uuid(id));
        if (!row) return 'not-found' as const;
        const previous = toUser(row);
        if (patch.role === 'user' && previous.role === 'admin' && admins.every((a) => a.id === row.id))
          return 'last-admin' as const;
        row.role = patch.role ?? row.role;
        row.quotaBytes = quota ?? row.quotaBytes;
        return { user: toUser(row), previous };
      }),
    );
  }

  async setRetention(
    id: string,
    policy: { keepVersions: number | null; keepDays: number | null; trashDays: number },
    tx?: Tx,
  ): Promise<void> {
    await this.db.run(this.db.txOf(tx) ?? this.tx, (t) => {
      const keep = {
        v: int4OrNull(policy.keepVersions),
        d: int4OrNull(policy.keepDays),
        t: int4OrNull(policy.trashDays),
      };
      const r = t.users.get(uuid(id));
      if (!r) return;
      r.keepVersions = keep.v;
      r.keepDays = keep.d;
      r.trashDays = keep.t;
    });
  }

  /** `order by used_bytes desc, id`. */
  byUsage(limit: number) {
    return this.run((t) =>
      [...t.users.values()]
        .sort((a, b) => compareNumber(b.usedBytes, a.usedBytes) || compareUuid(a.id, b.id))
        .slice(0, limitOf(limit))
        .map(toUser),
    );
  }

  /** The user row and its root folder together; an existing id is left as it is (`on conflict (id) do nothing`). */
  async ensure(input: { id: string; email: string; role: 'admin' | 'user'; quotaBytes: number }) {
    const existing = await this.get(input.id);
    if (existing) return existing;
    const rootId = randomUUID();
    await this.db.transaction((tx) =>
      this.db.run(this.db.txOf(tx), (t, now) => {
        const id = uuid(input.id);
        const quotaBytes = int8(input.quotaBytes);
        if (t.users.has(id)) return;
        const emailKey = input.email.toLowerCase();
        for (const u of t.users.values())
          if (u.emailKey === emailKey) throw new UniqueViolationError('users_email_unique');
        if (t.items.has(rootId)) throw new UniqueViolationError('items_pkey');
        t.users.set(id, {
          id,
          email: input.email,
          emailKey,
          role: input.role,
          rootFolderId: rootId,
          quotaBytes,
          usedBytes: 0,
          createdAt: now,
          keepVersions: null,
          keepDays: null,
          trashDays: null,
        });
        t.items.set(
          rootId,
          newItem(now, { id: rootId, ownerId: id, parentId: null, kind: 'folder', name: '', nameKey: null }),
        );
      }),
    );
    const user = await this.get(input.id);
    if (!user) throw new Error('user vanished after creation');
    return user;
  }
}
